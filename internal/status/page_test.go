package status_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Oslo on a box without /usr/share/zoneinfo

	"anprd/internal/buildinfo"
	"anprd/internal/decide"
	"anprd/internal/evidence"
	"anprd/internal/health"
	"anprd/internal/passage"
	"anprd/internal/presence"
	"anprd/internal/status"
	"anprd/internal/status/statustest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// t0 is the fixture's "now": 2026-12-01 14:00:00 UTC, 15:00 in Oslo.
var t0 = time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)

// clock is a settable clock for the rate limit.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	cropPath  = "2026-12-01/135955.120-in-1-7-plate.jpg"
	testToken = "correct-horse-battery-staple-42"
)

// jpegBytes is enough of a JPEG for the browser to show a grey plate.
var jpegBytes = mustRead("testdata/plate.jpg")

func mustRead(p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		panic(err)
	}
	return b
}

// snapshot is two lanes (a barrier entrance and a free-flow exit), two
// passages, a backlog and one vehicle inside.
func snapshot() status.Snapshot {
	in := passage.Passage{ID: passage.ID{1}, Lane: "in-1", Direction: "entry", Kind: passage.Vehicle, Time: t0.Add(-4 * time.Second),
		Read:     &passage.Read{Plate: "EL12345", Conf: 0.97, Country: "NO"},
		Decision: &passage.Decision{Class: decide.Permit, Action: decide.Open, Plate: "EL12345"},
		Gate:     passage.Gate{Action: passage.Opened, Passed: true},
		Timings:  passage.Timings{Trigger: t0.Add(-6 * time.Second), Command: t0.Add(-6*time.Second + 420*time.Millisecond)},
		Evidence: passage.Evidence{Plate: cropPath}}
	out := passage.Passage{ID: passage.ID{2}, Lane: "out-1", Direction: "exit", Kind: passage.Vehicle, Time: t0.Add(-30 * time.Second),
		Read:     &passage.Read{Plate: "ABC123", Conf: 0.91, Country: "SE"},
		Decision: &passage.Decision{Class: decide.Unregistered, Action: decide.OpenCharge, Plate: "ABC123"},
		Gate:     passage.Gate{Action: passage.NoBarrier, Passed: true}}
	return status.Snapshot{
		Lanes: []status.LaneView{
			{ID: "in-1", Name: "Storgata inn", Direction: "entry", Mode: "barrier",
				Barrier: &status.BarrierView{State: "closed", Arming: status.Loop{Wired: true}, Safety: status.Loop{Wired: true}},
				Camera:  &status.CameraView{Connected: true, FPS: 12.5, LastFrame: t0.Add(-80 * time.Millisecond), Frames: 4200},
				Reads: []status.ReadView{{Time: t0.Add(-5 * time.Second), Plate: "EL12345", Conf: 0.97, Country: "NO", Final: true,
					Crop: cropPath, Decision: in.Decision, Gate: &in.Gate}}},
			{ID: "out-1", Direction: "exit", Mode: "free-flow",
				Camera: &status.CameraView{Connected: false, Error: "rtsp: connection refused"}},
		},
		Passages: []passage.Passage{in, out},
		Uplink:   status.UplinkView{Connected: false, Error: "connection refused", Passages: 17, Messages: 40, Oldest: t0.Add(-95 * time.Second), Max: 100000},
		Sync:     status.SyncView{Seq: 4711},
		Presence: status.PresenceView{Facility: "oslo-p1", Count: 1, Vehicles: []presence.Vehicle{{Facility: "oslo-p1", Plate: "EL12345", Entered: t0.Add(-4 * time.Second), Lane: "in-1", Class: "permit"}}},
	}
}

type fixture struct {
	src     *statustest.Source
	acts    *statustest.Actions
	audit   *statustest.Audit
	clk     *clock
	log     *bytes.Buffer
	health  *health.Registry
	handler http.Handler
}

// newFixture serves the fixture's page; edit changes the config first.
func newFixture(t testing.TB, edit func(*status.Config)) *fixture {
	t.Helper()
	f := &fixture{src: &statustest.Source{}, acts: &statustest.Actions{}, audit: &statustest.Audit{},
		clk: &clock{t: t0}, log: &bytes.Buffer{}}
	f.src.Set(snapshot())
	f.health = health.NewRegistry(f.clk.Now)
	f.health.Register("database").Set(health.OK, true, "schema 5")
	f.health.Register("lane/out-1").Set(health.Degraded, false, "camera not delivering: rtsp: connection refused")
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	c := status.Config{
		Static: status.Static{Site: status.Site{ID: "oslo-p1", Device: "box-1", Name: "Sentrum P-hus"},
			Build: buildinfo.Info{Version: "v1.2.3"}, Started: t0.Add(-time.Hour)},
		Health: f.health, Gatherer: prometheus.NewRegistry(), Now: f.clk.Now, Location: oslo,
		Source: f.src, Images: statustest.Images{cropPath: jpegBytes},
		Actions: f.acts, Token: testToken, Audit: f.audit,
		Log: zerolog.New(f.log),
	}
	if edit != nil {
		edit(&c)
	}
	f.handler = status.Handler(c)
	return f
}

// do serves one request from client (host:port).
func (f *fixture) do(method, target, client string, body io.Reader, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	if client != "" {
		r.RemoteAddr = client
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, r)
	return rec
}

func (f *fixture) get(target string) *httptest.ResponseRecorder {
	return f.do(http.MethodGet, target, "", nil, nil)
}

func TestPageShowsWhatATechnicianNeeds(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.get("/")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"Sentrum P-hus", "v1.2.3",
		`id="lane-in-1"`, "Storgata inn", `class="state s-closed">closed<`, "12.5 fps",
		`<img src="/evidence/` + cropPath + `"`, "permit → open", "14:59:55", // the read, in Oslo time
		`id="lane-out-1"`, "no barrier", "not delivering", "rtsp: connection refused",
		`<tr class="passage"><td>14:59:56</td><td>in-1</td><td class="plate">EL12345</td>`, "420ms",
		"unregistered", "17 passages waiting (40 messages), oldest 1m35s",
		`<dd id="seq">4711</dd>`,
		"Inside oslo-p1", "1 counted",
		"lane/out-1: degraded: camera not delivering", // a fault
		`action="/actions/open"`, `<option value="in-1">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, `<option value="out-1">`) {
		t.Error("a free-flow lane is offered for opening")
	}
	h := rec.Header()
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'sha256-") {
		t.Errorf("CSP = %q", csp)
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers = %v", h)
	}

	live := f.get("/live")
	if live.Code != http.StatusOK || strings.Contains(live.Body.String(), "<html") || !strings.Contains(live.Body.String(), `id="lane-in-1"`) {
		t.Errorf("GET /live = %d, a fragment with the lanes expected:\n%s", live.Code, live.Body)
	}
	if strings.Contains(live.Body.String(), "<form") {
		t.Error("the live fragment holds forms: a refresh would wipe what is typed")
	}

	f.src.Update(func(s *status.Snapshot) {
		s.Lanes[0].Barrier.State, s.Lanes[0].Barrier.Fault = "fault", "open switch did not confirm within 10s"
		s.Lanes[0].Barrier.Alarm = true
	})
	body = f.get("/live").Body.String()
	for _, want := range []string{"lane in-1: barrier in fault: open switch did not confirm", "lane in-1: a vehicle has stood on the safety loop"} {
		if !strings.Contains(body, want) {
			t.Errorf("faults lack %q", want)
		}
	}
}

func TestActionsOffWithoutToken(t *testing.T) {
	f := newFixture(t, func(c *status.Config) { c.Token = "" })
	if body := f.get("/").Body.String(); !strings.Contains(body, "Actions are off") || strings.Contains(body, `action="/actions/open"`) {
		t.Error("page without a token offers actions")
	}
	rec := f.post("/actions/open", "", form("lane", "in-1", "operator", "kari", "reason", "ticket machine broken", "token", ""))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "status.action_token_file") {
		t.Errorf("action without a token configured = %d %s", rec.Code, rec.Body)
	}
	if len(f.acts.Calls()) != 0 {
		t.Error("action carried out")
	}
}

func TestNoPageWithoutSource(t *testing.T) {
	h := status.Handler(status.Config{Health: health.NewRegistry(time.Now), Gatherer: prometheus.NewRegistry(), Now: time.Now})
	for _, p := range []string{"/", "/live", "/evidence/" + cropPath} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s without a source = %d", p, rec.Code)
		}
	}
}

// TestAllowedNetworks: every route, the plain endpoints too, is refused
// to a client outside status.allow.
func TestAllowedNetworks(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fe80::/10")}
	f := newFixture(t, func(c *status.Config) { c.Allow = nets })
	for _, tc := range []struct {
		client string
		want   int
	}{
		{"127.0.0.1:40000", http.StatusOK},
		{"10.20.30.40:40000", http.StatusOK},
		{"[::ffff:10.20.30.40]:40000", http.StatusOK}, // v4-mapped
		{"[fe80::1%eth0]:40000", http.StatusOK},       // link-local with its zone
		{"203.0.113.9:40000", http.StatusForbidden},
		{"192.168.1.5:40000", http.StatusForbidden}, // private, but not listed
		{"[2001:db8::1]:40000", http.StatusForbidden},
		{"garbage", http.StatusForbidden},
	} {
		for _, path := range []string{"/", "/live", "/healthz", "/metrics", "/api/v1/status", "/evidence/" + cropPath} {
			rec := f.do(http.MethodGet, path, tc.client, nil, nil)
			if rec.Code != tc.want {
				t.Errorf("%s from %s = %d, want %d", path, tc.client, rec.Code, tc.want)
			}
		}
		rec := f.post("/actions/open", tc.client, form("lane", "in-1", "operator", "kari", "reason", "ticket machine broken", "token", testToken))
		if tc.want == http.StatusForbidden && rec.Code != http.StatusForbidden {
			t.Errorf("action from %s = %d, want 403", tc.client, rec.Code)
		}
	}
	if rec := f.do(http.MethodGet, "/", "203.0.113.9:1", nil, nil); !strings.Contains(rec.Body.String(), "203.0.113.9 is not in status.allow") {
		t.Errorf("403 says %q", rec.Body)
	}
}

// TestImagesCannotLeaveTheStore serves crops from a real evidence store
// and tries to read a file beside it by every path trick.
func TestImagesCannotLeaveTheStore(t *testing.T) {
	dir := t.TempDir()
	store, err := evidence.New(filepath.Join(dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	plateRel, _, err := store.Save(t0, "in-1", 7, jpegBytes, jpegBytes)
	if err != nil {
		t.Fatal(err)
	}
	secret := "SECRET-not-an-image"
	os.WriteFile(filepath.Join(dir, "secret.jpg"), []byte(secret), 0o600)
	os.WriteFile(filepath.Join(dir, "evidence", "2026-12-01", "notes.txt"), []byte(secret), 0o600)
	os.Symlink(filepath.Join(dir, "secret.jpg"), filepath.Join(dir, "evidence", "2026-12-01", "000000.000-x-1-plate.jpg.link"))
	f := newFixture(t, func(c *status.Config) { c.Images = store })

	rec := f.get("/evidence/" + plateRel)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), jpegBytes) || rec.Header().Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET the crop %s = %d %s", plateRel, rec.Code, rec.Header())
	}
	for _, p := range []string{
		"/evidence/../secret.jpg",
		"/evidence/..%2fsecret.jpg",
		"/evidence/2026-12-01/..%2f..%2fsecret.jpg",
		"/evidence/%2e%2e/secret.jpg",
		"/evidence/2026-12-01/%2e%2e%2f%2e%2e%2fsecret.jpg",
		"/evidence/" + escapeSlashes(filepath.Join(dir, "secret.jpg")),
		"/evidence//" + strings.TrimPrefix(filepath.Join(dir, "secret.jpg"), "/"),
		"/evidence/2026-12-01/notes.txt",
		"/evidence/2026-12-01/000000.000-x-1-plate.jpg.link",
		"/evidence/2026-12-01/135955.120-in-1-7-plate.jpg%00.txt",
		"/evidence/2026-12-01\\..\\..\\secret.jpg",
		"/evidence/",
	} {
		rec := f.get(p)
		if rec.Code == http.StatusOK || strings.Contains(rec.Body.String(), secret) {
			t.Errorf("GET %s = %d %q", p, rec.Code, rec.Body)
		}
	}
}

// escapeSlashes escapes a path's slashes, as a crafted link would.
func escapeSlashes(p string) string { return strings.ReplaceAll(p, "/", "%2f") }
