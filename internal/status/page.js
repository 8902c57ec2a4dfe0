(function () {
  "use strict";
  var live = document.getElementById("live"), upd = document.getElementById("upd");
  // Refresh the live part every 2 s: the page is never reloaded, so a
  // form being filled in below keeps what was typed.
  function tick() {
    fetch("/live", { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (t) {
      live.innerHTML = t;
      upd.textContent = "live";
      upd.className = "ok";
    }).catch(function (e) {
      upd.textContent = "not updating: " + e.message;
      upd.className = "bad";
    }).finally(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 2000);
  // The token typed once fills every form's token field.
  var tokens = document.querySelectorAll("input[name=token]");
  tokens.forEach(function (t) {
    t.addEventListener("input", function () {
      tokens.forEach(function (o) { if (o !== t) { o.value = t.value; } });
    });
  });
  // Actions are posted in the background; the answer shows by the form.
  document.querySelectorAll("form.act").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var out = f.querySelector(".out");
      out.textContent = "…";
      out.className = "out";
      fetch(f.action, { method: "POST", body: new URLSearchParams(new FormData(f)), headers: { "Accept": "text/plain" } })
        .then(function (r) {
          return r.text().then(function (t) {
            out.textContent = t;
            out.className = "out " + (r.ok ? "ok" : "bad");
          });
        }).catch(function (e) { out.textContent = e.message; out.className = "out bad"; });
    });
  });
})();
