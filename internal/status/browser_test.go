package status_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/status"
)

// chromium finds Debian's chromium (internal/deps installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (Debian package chromium; make deps installs it): the page is not driven in a browser")
	return ""
}

// headless runs chromium on url with args and returns its standard
// output. Every process it starts is killed when it returns.
func headless(t *testing.T, bin, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir=" + t.TempDir(),
	}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers it left behind
	}
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, tail(errb.String(), 2000))
	}
	return out.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// counter counts the requests by path.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(p string) { c.mu.Lock(); defer c.mu.Unlock(); c.n[p]++ }
func (c *counter) get(p string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[p]
}

// afterFirstPage is the state change the page must pick up by itself: a
// car drove onto the arming loop and was let in.
func afterFirstPage(s *status.Snapshot) {
	b := s.Lanes[0].Barrier
	b.State, b.Arming.Occupied = "open", true
	now := t0.Add(time.Second)
	p := passage.Passage{ID: passage.ID{3}, Lane: "in-1", Direction: "entry", Kind: passage.Vehicle, Time: now,
		Read:     &passage.Read{Plate: "BT40123", Conf: 0.94, Country: "NO"},
		Decision: &passage.Decision{Class: decide.Account, Action: decide.Open, Plate: "BT40123"},
		Gate:     passage.Gate{Action: passage.Opened},
		Timings:  passage.Timings{Trigger: now.Add(-time.Second), Command: now.Add(-time.Second + 380*time.Millisecond)}}
	s.Passages = append([]passage.Passage{p}, s.Passages...)
	s.Lanes[0].Reads = append([]status.ReadView{{Time: now, Plate: "BT40123", Conf: 0.94, Country: "NO", Decision: p.Decision, Gate: &p.Gate}}, s.Lanes[0].Reads...)
	s.Uplink.Passages++
}

// TestPageInChromium serves the page with fake lanes on 127.0.0.1 and
// looks at it in headless Chromium as a technician would: the lane's
// state, a passage row, and — after a change of state, with the page
// never loaded again — the new state and the new passage.
func TestPageInChromium(t *testing.T) {
	bin := chromium(t)
	f := newFixture(t, nil)
	reqs := &counter{n: map[string]int{}}
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.add(r.URL.Path)
		f.handler.ServeHTTP(w, r)
		if r.URL.Path == "/" {
			once.Do(func() { f.src.Update(afterFirstPage) })
		}
	}))
	defer srv.Close()

	// 5 s of the page's own time: two refreshes at least.
	dom := string(headless(t, bin, srv.URL+"/", "--virtual-time-budget=5000", "--dump-dom"))
	lane := section(t, dom, "lane-in-1")
	for _, want := range []string{`class="state s-open">open<`, `Arming loop</dt><dd><span class="warn">occupied</span>`,
		"BT40123", "account → open"} {
		if !strings.Contains(lane, want) {
			t.Errorf("lane in-1 after the change lacks %q:\n%s", want, lane)
		}
	}
	passages := section(t, dom, "passages")
	for _, want := range []string{
		`<td>15:00:01</td><td>in-1</td><td class="plate">BT40123</td>`, // the new one
		`<td>14:59:56</td><td>in-1</td><td class="plate">EL12345</td>`, // and the one before
	} {
		if !strings.Contains(passages, want) {
			t.Errorf("passages lack %q:\n%s", want, passages)
		}
	}
	if !strings.Contains(dom, "18 passages waiting") {
		t.Error("outbox depth not updated")
	}
	if !strings.Contains(dom, `<span id="upd" class="ok">live</span>`) {
		t.Error("the page does not say it is live")
	}
	if n := reqs.get("/"); n != 1 {
		t.Errorf("the page was loaded %d times; it must update without a reload", n)
	}
	if n := reqs.get("/live"); n < 1 {
		t.Errorf("the page fetched its live part %d times", n)
	}
	if n := reqs.get("/evidence/" + cropPath); n < 1 {
		t.Error("the plate crop was not loaded")
	}

	// What it looks like on a phone and on a desktop.
	dir := t.TempDir()
	for _, shot := range []struct {
		name   string
		width  int
		height int
	}{{"status-page-phone.png", 360, 2700}, {"status-page-desktop.png", 1280, 1640}} {
		path := filepath.Join(dir, shot.name)
		headless(t, bin, srv.URL+"/", "--virtual-time-budget=2500", "--screenshot="+path,
			"--force-device-scale-factor=1", "--window-size="+strconv.Itoa(shot.width)+","+strconv.Itoa(shot.height))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != shot.width {
			t.Errorf("%s: %dx%d, %v", shot.name, cfg.Width, cfg.Height, err)
		}
		// ANPRD_PAGE_SCREENSHOTS=docs keeps them (docs/status-page-*.png).
		if out := os.Getenv("ANPRD_PAGE_SCREENSHOTS"); out != "" {
			if err := os.WriteFile(filepath.Join(out, shot.name), b, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
}

// section is the element with id in dom, up to the next section.
func section(t *testing.T, dom, id string) string {
	t.Helper()
	re := regexp.MustCompile(`(?s)<section[^>]*id="` + regexp.QuoteMeta(id) + `".*?</section>`)
	s := re.FindString(dom)
	if s == "" {
		t.Fatalf("no section %s in the page:\n%s", id, tail(dom, 4000))
	}
	return s
}

// driver fills in the open form as a technician would — the token typed
// into another form's field, which the page copies — and submits it.
const driver = `window.addEventListener("load", function () {
  var f = document.querySelector('form[action="/actions/open"]');
  f.querySelector("[name=operator]").value = "kari.n";
  f.querySelector("[name=reason]").value = "ticket machine broken";
  var t = document.querySelector('form[action="/actions/resync"] [name=token]');
  t.value = "TOKEN";
  t.dispatchEvent(new Event("input"));
  f.requestSubmit();
});`

// TestPageActionInChromium opens a barrier from the page in Chromium:
// the page's own script posts the form in the background and shows the
// answer beside it, without leaving the page. The test server adds a
// driver script (allowed by its hash beside the page's own) that types
// and clicks.
func TestPageActionInChromium(t *testing.T) {
	bin := chromium(t)
	for _, tc := range []struct {
		token, want, class string
		calls              int
	}{
		{testToken, "lane in-1: barrier opened; the manual passage is recorded", "out ok", 1},
		{"not-the-token", "wrong or missing action token", "out bad", 0},
	} {
		f := newFixture(t, nil)
		reqs := &counter{n: map[string]int{}}
		script := strings.ReplaceAll(driver, "TOKEN", tc.token)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqs.add(r.Method + " " + r.URL.Path)
			if r.URL.Path != "/" {
				f.handler.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			csp := rec.Header().Get("Content-Security-Policy")
			w.Header().Set("Content-Security-Policy", strings.Replace(csp, "script-src ", "script-src '"+scriptHash(script)+"' ", 1))
			w.Write([]byte(strings.Replace(rec.Body.String(), "</body>", "<script>"+script+"</script></body>", 1)))
		}))
		dom := string(headless(t, bin, srv.URL+"/", "--virtual-time-budget=3000", "--dump-dom"))
		srv.Close()
		act := section(t, dom, "actions")
		want := `<output class="` + tc.class + `">` + tc.want
		if !strings.Contains(act, want) {
			t.Errorf("token %q: the open form does not show %q:\n%s", tc.token, want, act)
		}
		calls := f.acts.Calls()
		if len(calls) != tc.calls {
			t.Fatalf("token %q: %d calls, want %d", tc.token, len(calls), tc.calls)
		}
		if tc.calls == 1 {
			if m := calls[0].Manual; calls[0].Lane != "in-1" || m.Source != "page" || m.Operator != "kari.n" || m.Reason != "ticket machine broken" {
				t.Errorf("the opening = %+v", calls[0])
			}
		}
		if reqs.get("GET /") != 1 || reqs.get("POST /actions/open") != 1 {
			t.Errorf("requests %v: the page must post in the background and stay", reqs.n)
		}
	}
}

func scriptHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(h[:])
}
