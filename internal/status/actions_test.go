package status_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"anprd/internal/presence"
)

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// post sends a form as the page's script does (Accept: text/plain).
func (f *fixture) post(path, client string, v url.Values) *httptest.ResponseRecorder {
	return f.postWith(path, client, v, nil)
}

func (f *fixture) postWith(path, client string, v url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/plain"}
	for k, x := range hdr {
		h[k] = x
	}
	return f.do(http.MethodPost, path, client, strings.NewReader(v.Encode()), h)
}

const client = "10.0.0.5:50000"

func openForm(token string) url.Values {
	return form("lane", "in-1", "operator", "kari.n", "reason", "ticket machine broken", "token", token)
}

// TestActionNeedsTheToken: no token, a wrong one, a right one of another
// length, then the right one in the form or as a bearer token.
func TestActionNeedsTheToken(t *testing.T) {
	f := newFixture(t, nil)
	for _, tok := range []string{"", "guess-1234", testToken + "x", strings.ToUpper(testToken)} {
		if rec := f.post("/actions/open", client, openForm(tok)); rec.Code != http.StatusUnauthorized {
			t.Errorf("token %q: %d %s", tok, rec.Code, rec.Body)
		}
		f.clk.Add(time.Minute) // not the rate limit under test
	}
	if n := len(f.acts.Calls()); n != 0 {
		t.Fatalf("%d actions carried out without the token", n)
	}
	if n := len(f.audit.Entries()); n != 0 {
		t.Errorf("refused tries audited: %d", n)
	}
	rec := f.post("/actions/open", client, openForm(testToken))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "barrier opened") {
		t.Fatalf("right token: %d %s", rec.Code, rec.Body)
	}
	v := openForm("")
	v.Del("token")
	if rec := f.postWith("/actions/open", client, v, map[string]string{"Authorization": "Bearer " + testToken}); rec.Code != http.StatusOK {
		t.Errorf("bearer token: %d %s", rec.Code, rec.Body)
	}
	if n := len(f.acts.Calls()); n != 2 {
		t.Errorf("%d openings, want 2", n)
	}
	if strings.Contains(f.log.String(), testToken) || strings.Contains(f.log.String(), "guess-1234") {
		t.Errorf("the log holds a token:\n%s", f.log)
	}
	if !strings.Contains(f.log.String(), "wrong or missing token") {
		t.Errorf("refused tries not logged:\n%s", f.log)
	}
}

// TestActionIsPostAndSameSite: a GET does nothing; a form posted from
// another site's page is refused before the token is even looked at.
func TestActionIsPostAndSameSite(t *testing.T) {
	f := newFixture(t, nil)
	if rec := f.do(http.MethodGet, "/actions/open?"+openForm(testToken).Encode(), client, nil, nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET an action = %d", rec.Code)
	}
	for _, hdr := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Origin": "null"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
	} {
		if rec := f.postWith("/actions/open", client, openForm(testToken), hdr); rec.Code != http.StatusForbidden {
			t.Errorf("%v: %d %s", hdr, rec.Code, rec.Body)
		}
	}
	if rec := f.postWith("/actions/open", client, openForm(testToken), map[string]string{"Content-Type": "text/plain"}); rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d", rec.Code)
	}
	if n := len(f.acts.Calls()); n != 0 {
		t.Fatalf("%d actions carried out", n)
	}
	// The page's own form: same origin.
	if rec := f.postWith("/actions/open", client, openForm(testToken), map[string]string{"Origin": "http://example.com", "Sec-Fetch-Site": "same-origin"}); rec.Code != http.StatusOK {
		t.Errorf("same-origin post: %d %s", rec.Code, rec.Body)
	}
	// Without the script the browser posts the form and gets a page back.
	rec := f.postWith("/actions/open", client, openForm(testToken), map[string]string{"Accept": "text/html"})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<a href="/">`) {
		t.Errorf("form post without script: %d %s", rec.Code, rec.Body)
	}
}

// TestEachActionCallsItsOwn: open, remove a vehicle, resync — each goes
// to its call with what was typed, is audited with its result, and says
// clearly what happened.
func TestEachActionCallsItsOwn(t *testing.T) {
	f := newFixture(t, nil)
	f.acts.Lanes = map[string]bool{"in-1": true, "out-1": false}
	oslo, _ := time.LoadLocation("Europe/Oslo")
	f.acts.Inside = map[string]presence.Vehicle{"AB12345": {Plate: "AB12345", Lane: "in-1", Entered: time.Date(2026, 11, 30, 8, 15, 0, 0, oslo)}}
	step := func(path string, v url.Values, code int, msg string) {
		t.Helper()
		f.clk.Add(time.Minute)
		rec := f.post(path, client, v)
		if rec.Code != code || !strings.Contains(rec.Body.String(), msg) {
			t.Errorf("POST %s %v = %d %q, want %d %q", path, v, rec.Code, rec.Body, code, msg)
		}
	}
	step("/actions/open", openForm(testToken), 200, "lane in-1: barrier opened")
	step("/actions/open", form("lane", "out-1", "operator", "kari.n", "reason", "test", "token", testToken), 409, "free-flow")
	step("/actions/open", form("lane", "nope", "operator", "kari.n", "reason", "test", "token", testToken), 404, "no such lane")
	step("/actions/open", form("operator", "kari.n", "reason", "test", "token", testToken), 400, "lane: required")
	step("/actions/open", form("lane", "in-1", "reason", "test", "token", testToken), 400, "operator: required")
	step("/actions/open", form("lane", "in-1", "operator", "kari.n", "reason", "x", "token", testToken), 400, "reason: at least 3")
	step("/actions/open", form("lane", "in-1", "operator", "kari\nn", "reason", "test", "token", testToken), 400, "one line")
	step("/actions/presence/remove", form("plate", "ab 12345", "operator", "kari.n", "reason", "exit read missed", "token", testToken), 200,
		"AB12345 removed from the vehicles inside (entered 2026-11-30 08:15 by lane in-1)")
	step("/actions/presence/remove", form("plate", "AB12345", "operator", "kari.n", "reason", "exit read missed", "token", testToken), 404, "not inside")
	step("/actions/presence/remove", form("plate", "--", "operator", "kari.n", "reason", "exit read missed", "token", testToken), 400, "plate: required")
	step("/actions/resync", form("operator", "kari.n", "reason", "permits look stale", "token", testToken), 200, "resync requested")
	f.acts.Err = errors.New("barrier in fault: open switch did not confirm")
	step("/actions/open", openForm(testToken), 500, "barrier not opened: barrier in fault")

	calls := f.acts.Calls()
	var got []string
	for _, c := range calls {
		got = append(got, c.Action+":"+c.Lane+c.Plate)
	}
	// The fake checks lanes before it records; bad input never reaches it.
	want := "open:in-1 presence_remove:AB12345 presence_remove:AB12345 resync: open:in-1"
	if strings.Join(got, " ") != want {
		t.Errorf("calls %v, want %s", got, want)
	}
	if m := calls[0].Manual; m.Source != "page" || m.Operator != "kari.n" || m.Reason != "ticket machine broken" {
		t.Errorf("manual opening = %+v", m)
	}
	if d := calls[3].Detail; d != "status page: kari.n: permits look stale" {
		t.Errorf("resync detail %q", d)
	}

	var audit []string
	for _, e := range f.audit.Entries() {
		if e.Operator != "kari.n" || e.Client != "10.0.0.5" || e.Time.IsZero() {
			t.Errorf("audit entry %+v", e)
		}
		audit = append(audit, e.Action+" "+e.Lane+e.Plate+" "+e.Result)
	}
	wantAudit := []string{
		"open in-1 ok",
		"open out-1 lane out-1: the lane is free-flow: it has no barrier",
		"open nope lane nope: no such lane",
		"presence_remove AB12345 ok",
		"presence_remove AB12345 AB12345 is not inside; nothing removed",
		"resync  ok",
		"open in-1 lane in-1: barrier not opened: barrier in fault: open switch did not confirm",
	}
	if strings.Join(audit, "\n") != strings.Join(wantAudit, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(audit, "\n"), strings.Join(wantAudit, "\n"))
	}
	if !strings.Contains(f.log.String(), `"action":"presence_remove"`) || !strings.Contains(f.log.String(), `"reason":"exit read missed"`) {
		t.Errorf("actions not logged:\n%s", f.log)
	}
	// The page shows the recent actions.
	if body := f.get("/live").Body.String(); !strings.Contains(body, "kari.n: presence_remove AB12345 — exit read missed") {
		t.Errorf("recent actions not on the page")
	}
	// An audit log that cannot be written does not hide the action: the
	// log line says it all.
	f.audit.Err = errors.New("disk full")
	f.acts.Err = nil
	step("/actions/resync", form("operator", "kari.n", "reason", "second try", "token", testToken), 200, "resync requested")
	if !strings.Contains(f.log.String(), "not written to the audit log") {
		t.Error("a lost audit entry is not logged")
	}
}

// TestRateLimit: a client gets 5 tries in a row, wrong tokens too, then
// one every 10 s; all clients together 20, then one every 3 s.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, nil)
	for i := range 5 {
		if rec := f.post("/actions/resync", client, form("operator", "x", "reason", "guess", "token", "guess")); rec.Code != http.StatusUnauthorized {
			t.Fatalf("try %d: %d", i, rec.Code)
		}
	}
	rec := f.post("/actions/resync", client, form("operator", "x", "reason", "abc", "token", testToken))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "10" ||
		!strings.Contains(rec.Body.String(), "too many actions from 10.0.0.5: try again in 10 s") {
		t.Fatalf("6th try = %d %q Retry-After %q", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if len(f.acts.Calls()) != 0 {
		t.Fatal("a limited try was carried out")
	}
	// Another client is not held up by the first.
	if rec := f.post("/actions/resync", "10.0.0.6:1", form("operator", "x", "reason", "abc", "token", testToken)); rec.Code != http.StatusOK {
		t.Errorf("second client: %d %s", rec.Code, rec.Body)
	}
	f.clk.Add(4 * time.Second)
	if rec := f.post("/actions/resync", client, form("operator", "x", "reason", "abc", "token", testToken)); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "6" {
		t.Errorf("after 4 s: %d Retry-After %s", rec.Code, rec.Header().Get("Retry-After"))
	}
	f.clk.Add(6 * time.Second)
	if rec := f.post("/actions/resync", client, form("operator", "x", "reason", "abc", "token", testToken)); rec.Code != http.StatusOK {
		t.Errorf("after 10 s: %d %s", rec.Code, rec.Body)
	}

	// The total: 20 in a row from as many clients.
	g := newFixture(t, nil)
	n := 0
	for i := range 25 {
		c := "10.2.0." + strconv.Itoa(i+1) + ":1"
		rec := g.post("/actions/resync", c, form("operator", "x", "reason", "abc", "token", testToken))
		if rec.Code == http.StatusTooManyRequests {
			if !strings.Contains(rec.Body.String(), "too many actions on this box") {
				t.Errorf("total limit says %q", rec.Body)
			}
			n = i
			break
		}
	}
	if n != 20 {
		t.Errorf("the total limit held at %d actions, want 20", n)
	}
}
