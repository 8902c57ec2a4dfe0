package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"anprd/camera/reader"
	"anprd/internal/config"
	"anprd/internal/health"
	"anprd/internal/passage"
	"anprd/internal/plate"
	"anprd/internal/state"
	"anprd/internal/status"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// fakeNotifier records what would have gone to systemd.
type fakeNotifier struct {
	mu   sync.Mutex
	sent []string
	fail error
}

func (f *fakeNotifier) Notify(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.sent = append(f.sent, s)
	return nil
}

func (f *fakeNotifier) count(s string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, x := range f.sent {
		if x == s {
			n++
		}
	}
	return n
}

// fakeReader stands in for ONNX Runtime in these tests; camera/onnx and
// the end-to-end test in cmd/anprd load the real one.
func fakeReader(config.Reader) (string, error) { return "fake reader", nil }

// noReader is a reader check that fails: the lanes run without reading.
func noReader(config.Reader) (string, error) { return "", errors.New("no reader in this test") }

// validConfig parses a test's configuration and validates it, then gives
// the status listener port 0 (Validate wants a port; the test's own is
// picked when the listener binds).
func validConfig(t testing.TB, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Status.Listen = "127.0.0.1:1"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Status.Listen = "127.0.0.1:0"
	return cfg
}

// runUntilCleanup runs d until the test ends, when Run must return nil,
// and returns Run's context.
func runUntilCleanup(t testing.TB, d *Daemon) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return ctx
}

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	return &config.Config{
		Version: config.Version,
		Site:    config.Site{ID: "oslo-p1", Device: "box-1", TimeZone: "Europe/Oslo", Location: oslo},
		State:   config.State{Dir: t.TempDir()},
		Status:  config.Status{Listen: "127.0.0.1:0"},
		// A broker that is not there: the box runs without one.
		MQTT: config.MQTT{Broker: "tcp://127.0.0.1:1", ClientID: "anprd-test", TopicPrefix: "anpr/v1",
			Keepalive: config.Duration(30 * time.Second), Heartbeat: config.Duration(time.Minute),
			CommandMaxAge: config.Duration(time.Minute), OutboxMaxPassages: 1000, OutboxWhenFull: config.OutboxDropOldest},
		Retention: config.Retention{Evidence: config.Duration(7 * 24 * time.Hour), Passages: config.Duration(30 * 24 * time.Hour)},
		Access:    config.Access{Facility: "oslo-p1"},
		// No lanes: these tests are about the wiring; cmd/anprd's
		// end-to-end test runs a lane on a replayed clip.
		Path:   "/etc/anprd/anprd.yaml",
		Digest: "sha256:abc",
	}
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRunServesThenStops(t *testing.T) {
	cfg := testConfig(t)
	n := &fakeNotifier{}
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: n, ReaderCheck: fakeReader, Tick: 10 * time.Millisecond, Watchdog: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	base := "http://" + d.StatusAddr()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := getBody(t, base+"/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never became ready (last %d)", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n.count("READY=1") != 1 {
		t.Errorf("READY=1 sent %d times", n.count("READY=1"))
	}
	if code, body := getBody(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := getBody(t, base+"/metrics")
	for _, want := range []string{"anprd_build_info{", "anprd_component_ready{component=\"database\"} 1", "go_goroutines", "process_start_time_seconds",
		"anprd_state_schema_version " + strconv.Itoa(len(state.Migrations))} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	code, body = getBody(t, base+"/api/v1/status")
	var rep status.Report
	if err := json.Unmarshal([]byte(body), &rep); code != 200 || err != nil {
		t.Fatalf("/api/v1/status = %d, %v", code, err)
	}
	if !rep.Ready || rep.Site.ID != "oslo-p1" || rep.Config.Digest != "sha256:abc" || rep.Schema != len(state.Migrations) || len(rep.Components) != 5 {
		t.Errorf("status report = %+v", rep)
	}
	// Status is read-only.
	resp, err := http.Post(base+"/api/v1/status", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/v1/status = %d", resp.StatusCode)
	}
	// The main loop beats, so the watchdog pings.
	for time.Now().Before(deadline) && n.count("WATCHDOG=1") == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if n.count("WATCHDOG=1") == 0 {
		t.Error("no watchdog ping while the main loop runs")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of cancel")
	}
	if n.count("STOPPING=1") != 1 {
		t.Error("STOPPING=1 not sent")
	}
	// The database was closed and the directory released.
	db, err := state.Open(cfg.State.Dir, state.Migrations)
	if err != nil {
		t.Fatalf("state still held after Run returned: %v", err)
	}
	db.Close()
	if _, err := net.Dial("tcp", d.StatusAddr()); err == nil {
		t.Error("status endpoint still accepting after Run returned")
	}
}

func TestSecondDaemonOnSameStateFails(t *testing.T) {
	cfg := testConfig(t)
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now()
	_, err = New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
	if !errors.Is(err, state.ErrLocked) {
		t.Fatalf("second daemon: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("second daemon took %v to fail", time.Since(start))
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t)
	cfg.Status.Listen = ln.Addr().String()
	_, err = New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
	if err == nil || !strings.Contains(err.Error(), "listen on "+ln.Addr().String()) {
		t.Fatalf("err = %v", err)
	}
	// The failed start released the state directory.
	db, err := state.Open(cfg.State.Dir, state.Migrations)
	if err != nil {
		t.Fatalf("state held after failed start: %v", err)
	}
	db.Close()
}

func TestShutdownOrder(t *testing.T) {
	cfg := testConfig(t)
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stopped []string
	started := make(chan struct{}, 3)
	for _, p := range []struct {
		stage int
		name  string
	}{{stageUplink, "uplink"}, {stageFrames, "camera"}, {stageLanes, "lane"}} {
		d.add(p.stage, p.name, func(ctx context.Context) error {
			started <- struct{}{}
			<-ctx.Done()
			time.Sleep(5 * time.Millisecond) // a later stage must wait for this
			mu.Lock()
			stopped = append(stopped, p.name)
			mu.Unlock()
			return ctx.Err()
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for range 3 {
		<-started
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := []string{"camera", "lane", "uplink"}; !slices.Equal(stopped, want) {
		t.Errorf("stop order %v, want %v", stopped, want)
	}
}

func TestFailingPartStopsDaemon(t *testing.T) {
	d, err := New(Options{Config: testConfig(t), Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
	if err != nil {
		t.Fatal(err)
	}
	d.add(stageFrames, "camera", func(ctx context.Context) error { return errors.New("decoder exploded") })
	err = d.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "camera: decoder exploded") {
		t.Fatalf("Run = %v", err)
	}
}

func TestWedgedPartBoundsShutdown(t *testing.T) {
	d, err := New(Options{Config: testConfig(t), Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader, ShutdownTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	d.add(stageLanes, "stuck-lane", func(ctx context.Context) error { <-release; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err = d.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "still running: stuck-lane") {
		t.Fatalf("Run = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("shutdown took %v with a 200ms bound", time.Since(start))
	}
}

// TestWatchdogFollowsMainLoop checks the watchdog pings while the main
// loop beats, withholds pings once it stops beating (a wedged loop), and
// resumes when it beats again.
func TestWatchdogFollowsMainLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		db, err := state.Open(t.TempDir(), state.Migrations)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var beat health.Heartbeat
		m := newMetrics(reg, health.NewRegistry(time.Now), &beat, time.Now, db, "s", "d", "x")
		n := &fakeNotifier{}
		w := &watchdog{period: 15 * time.Second, maxAge: 5 * time.Second, beat: &beat, notify: n, now: time.Now, log: zerolog.Nop(), m: m}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go w.Run(ctx)

		loop := func(d time.Duration) {
			for end := time.Now().Add(d); time.Now().Before(end); {
				beat.Beat(time.Now())
				time.Sleep(time.Second)
			}
		}
		loop(61 * time.Second) // pings at 15, 30, 45, 60 s
		if got := n.count("WATCHDOG=1"); got != 4 {
			t.Fatalf("pings while beating = %d, want 4", got)
		}
		time.Sleep(60 * time.Second) // wedged: no beats
		synctest.Wait()
		if got := n.count("WATCHDOG=1"); got != 4 {
			t.Errorf("pings while wedged went to %d", got)
		}
		// Pings due at 75, 90, 105 and 120 s found the last beat (60 s) too old.
		if got := testutil.ToFloat64(m.watchdogWithheld); got != 4 {
			t.Errorf("withheld = %v, want 4", got)
		}
		loop(30 * time.Second)
		if got := n.count("WATCHDOG=1"); got != 6 {
			t.Errorf("pings after the loop resumed = %d, want 6", got)
		}
		cancel()
	})
}

func TestMetricsLint(t *testing.T) {
	d, err := New(Options{Config: testConfig(t), Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	problems, err := promlint.NewWithMetricFamilies(mustGather(t, d.Registry())).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "anprd_") {
			t.Errorf("metric %s: %s", p.Metric, p.Text)
		}
	}
}

func mustGather(t *testing.T, g prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func TestBrokenReaderIsReportedNotFatal(t *testing.T) {
	cfg := testConfig(t)
	cfg.Lanes = []config.Lane{{ID: "in-1", Direction: "entry", Mode: "barrier", Camera: config.Camera{Source: "rtsp://127.0.0.1/x"}}}
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{},
		ReaderCheck: func(config.Reader) (string, error) { return "", errors.New("no libonnxruntime.so.1") }})
	if err != nil {
		t.Fatalf("a broken reader must not stop start-up: %v", err)
	}
	defer d.Close()
	ok, waiting := d.health.Ready()
	if ok || !slices.Contains(waiting, "reader") {
		t.Errorf("ready=%v waiting=%v; the reader must hold readiness back", ok, waiting)
	}
	for _, s := range d.health.Snapshot() {
		if s.Name == "reader" && (s.State != health.Failed || !strings.Contains(s.Detail, "libonnxruntime")) {
			t.Errorf("reader status %+v", s)
		}
		if strings.HasPrefix(s.Name, "lane/") {
			t.Errorf("lane %s started without a reader", s.Name)
		}
	}
}

// BenchmarkRound is the main loop's cost per tick (a bbolt read and a
// heartbeat): it runs every second for the daemon's life.
func BenchmarkRound(b *testing.B) {
	cfg := testConfig(b)
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	b.ReportAllocs()
	for b.Loop() {
		d.round()
	}
}

// TestRemoteOpenDrivesTheBarrier: a remote open command reaches the lane's
// barrier (simulated here); a free-flow lane has none to open.
func TestRemoteOpenDrivesTheBarrier(t *testing.T) {
	dir := t.TempDir()
	cfg := validConfig(t, `version: 1
site: {id: oslo-p1, device: box-1}
state: {dir: `+dir+`}
mqtt: {broker: "tcp://127.0.0.1:1"}
lanes:
  - id: in-1
    direction: entry
    camera: {source: `+filepath.Join(dir, "no-camera")+`}
    gate: {simulate: true, open: 1, safety_loop: 2, open_switch: 3, closed_switch: 4}
  - id: ff-1
    direction: entry
    mode: free-flow
    camera: {source: `+filepath.Join(dir, "no-camera")+`}
`)
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{},
		ReaderCheck: noReader})
	if err != nil {
		t.Fatal(err)
	}
	ctx := runUntilCleanup(t, d)
	octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
	defer ocancel()
	op := d.opener()
	m := passage.ManualOpen{Source: "remote", Operator: "ops-1", Reason: "ticket machine broken", Command: "c1"}
	if recorded, err := op.Open(octx, "in-1", m); err != nil || !recorded {
		t.Fatalf("remote open of in-1: recorded by the lane %v, %v", recorded, err)
	}
	if st, _ := d.gates["in-1"].built.Barrier.State(); st.String() != "opening" && st.String() != "open" {
		t.Errorf("barrier %v after a remote open, want opening or open", st)
	}
	if recorded, err := op.Open(octx, "ff-1", m); recorded || err == nil || !strings.Contains(err.Error(), "free-flow") {
		t.Errorf("remote open of a free-flow lane: %v, %v", recorded, err)
	}
	if _, err := op.Open(octx, "nope", m); err == nil {
		t.Error("remote open of an unknown lane succeeded")
	}
	if _, err := op.Open(octx, "in-1", passage.ManualOpen{Source: "remote"}); err == nil {
		t.Error("remote open without operator and reason succeeded")
	}
}

// TestReaderOptions: a lane's reader expects the countries and reads the
// narrowest plate its camera section says.
func TestReaderOptions(t *testing.T) {
	cfg := validConfig(t, `version: 1
site: {id: oslo-p1, device: box-1}
mqtt: {broker: "tcp://127.0.0.1:1"}
lanes:
  - {id: in-1, direction: entry, mode: free-flow, camera: {source: rtsp://cam/in, min_plate_width: 160, countries: [SE, NO]}}
  - {id: out-1, direction: exit, mode: free-flow, camera: {source: rtsp://cam/out}}
`)
	for i, want := range []reader.Options{
		{MinPlateWidth: 160, Countries: []plate.Country{"SE", "NO"}},
		{MinPlateWidth: 120, Countries: plate.DefaultCountries},
	} {
		if got := readerOptions(cfg.Lanes[i].Camera); !reflect.DeepEqual(got, want) {
			t.Errorf("lanes[%d]: reader options %+v, want %+v", i, got, want)
		}
	}
}
