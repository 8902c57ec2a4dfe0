package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"anprd/camera/plategen"
	"anprd/internal/status"

	"gocv.io/x/gocv"
)

var anprdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "anprd-test-")
	if err != nil {
		panic(err)
	}
	anprdBin = filepath.Join(dir, "anprd")
	args := []string{"build", "-o", anprdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building anprd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestCheckConfigExample(t *testing.T) {
	out, err := exec.Command(anprdBin, "-check-config", filepath.Join(repoRoot, "configs/anprd.example.yaml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": ok (") {
		t.Fatalf("example config: %v\n%s", err, out)
	}
}

// TestCheckConfigBad runs the binary on every bad config of the config
// package's test folder: each must exit 1 and print its message.
func TestCheckConfigBad(t *testing.T) {
	bad, _ := filepath.Glob(filepath.Join(repoRoot, "internal/config/testdata/bad/*.yaml"))
	if len(bad) < 10 {
		t.Fatalf("only %d bad configs found", len(bad))
	}
	for _, f := range bad {
		want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		cmd := exec.Command(anprdBin, "-check-config", f)
		cmd.Env = []string{} // no overrides from the test's environment
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%s: exit %v, want 1", filepath.Base(f), err)
		}
		if w := strings.TrimSpace(string(want)); !strings.Contains(stderr.String(), w) {
			t.Errorf("%s: output lacks %q:\n%s", filepath.Base(f), w, stderr.String())
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// notifySocket stands in for systemd: it collects what anprd sends to
// $NOTIFY_SOCKET.
func notifySocket(t *testing.T) (path string, msgs <-chan string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan string, 1024)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return path, ch
}

func waitFor(t *testing.T, msgs <-chan string, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-msgs:
			if m == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q from anprd within %v", want, within)
		}
	}
}

func writeConfig(t *testing.T, listen string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`version: 1
site: {id: test-site, device: box-1}
log: {level: debug, format: json}
state: {dir: %s}
status: {listen: "%s"}
mqtt: {broker: "tcp://127.0.0.1:1883"}
lanes:
  - id: in-1
    direction: entry
    mode: free-flow
    camera: {source: "%s"}
`, filepath.Join(dir, "state"), listen, writeClip(t))
	path := filepath.Join(dir, "anprd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDaemonLifecycle runs the real binary as systemd would: it must say
// READY once serving, ping the watchdog, answer on every endpoint, keep a
// second anprd off its state, and stop cleanly on SIGTERM.
func TestDaemonLifecycle(t *testing.T) {
	addr := freePort(t)
	cfgPath := writeConfig(t, addr)
	sock, msgs := notifySocket(t)

	cmd := exec.Command(anprdBin, "-config", cfgPath)
	deps := os.Getenv("ANPRD_DEPS_DIR")
	if deps == "" {
		deps, _ = filepath.Abs(filepath.Join(repoRoot, ".deps"))
	}
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000",
		"ANPRD_ONNXRUNTIME_LIBRARY="+filepath.Join(deps, "lib/libonnxruntime.so.1"),
		"ANPRD_MODELS_DIR="+filepath.Join(deps, "models"))
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("anprd log:\n%s", logs.String())
		}
	}()

	waitFor(t, msgs, "READY=1", 20*time.Second)
	waitFor(t, msgs, "WATCHDOG=1", 5*time.Second)

	base := "http://" + addr
	for _, ep := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/status"} {
		resp, err := http.Get(base + ep)
		if err != nil {
			t.Fatalf("GET %s: %v", ep, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d: %s", ep, resp.StatusCode, body)
		}
		if ep == "/api/v1/status" {
			var rep status.Report
			if err := json.Unmarshal(body, &rep); err != nil || rep.Site.ID != "test-site" || !rep.Ready || !strings.HasPrefix(rep.Config.Digest, "sha256:") {
				t.Errorf("status = %+v, %v", rep, err)
			}
		}
	}

	// The lane reads the replayed car: the status shows the read and the
	// metrics count its events.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/api/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		var rep status.Report
		json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		read := false
		for _, c := range rep.Components {
			read = read || c.Name == "lane/in-1" && strings.Contains(c.Detail, "last read EL43210")
		}
		if read {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no read of EL43210 on the status page: %+v", rep.Components)
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`anprd_read_events_total{kind="early",lane="in-1"}`, `anprd_camera_connected{lane="in-1"}`, `anprd_frame_read_seconds_count{lane="in-1"}`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// When the replayed car has gone, its evidence is kept in the state
	// directory.
	stateDir := filepath.Join(filepath.Dir(cfgPath), "state")
	for {
		shots, _ := filepath.Glob(filepath.Join(stateDir, "evidence", "*", "*-in-1-*-scene.jpg"))
		if len(shots) > 0 {
			img := gocv.IMRead(shots[0], gocv.IMReadColor)
			if img.Cols() != 640 {
				t.Errorf("scene evidence %s is %dx%d, want 640 wide", shots[0], img.Cols(), img.Rows())
			}
			img.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no evidence image in the state directory")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The lane decides on the car (an unregistered plate at a free-flow
	// entrance) and records its passage in the outbox, to be uploaded.
	want := `anprd_lane_passages_total{gate="no_barrier",kind="vehicle",lane="in-1"} 1`
	for passDeadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(metrics, []byte(want)) && bytes.Contains(metrics, []byte("anprd_outbox_passages_recorded_total 1")) {
			break
		}
		if time.Now().After(passDeadline) {
			t.Fatalf("no passage of the car recorded: metrics lack %s or anprd_outbox_passages_recorded_total 1", want)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A second anprd on the same state directory fails at once.
	start := time.Now()
	out, err := exec.Command(anprdBin, "-config", writeConfigSameState(t, cfgPath, freePort(t))).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "in use by another anprd") {
		t.Errorf("second anprd: %v\n%s", err, out)
	}
	// "At once": it does not wait for the lock. Loading the binary's
	// libraries alone can take seconds on a busy 2-core machine, so the
	// bound only tells a refusal from a wait.
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("second anprd took %v to give up: it waited for the lock", d)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("anprd exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("anprd did not stop within 10 s of SIGTERM")
	}
	t.Logf("stopped %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	waitFor(t, msgs, "STOPPING=1", time.Second)

	// JSON log lines, one per line, with the shutdown recorded.
	sc := bufio.NewScanner(&logs)
	var sawStopped bool
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("log line is not JSON: %q", sc.Text())
			continue
		}
		sawStopped = sawStopped || m["message"] == "stopped"
	}
	if !sawStopped {
		t.Error("no 'stopped' log line")
	}
}

// writeClip renders a short clip of a car with plate EL43210 as a folder
// of images, which the lane replays.
func writeClip(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := plategen.Plate("EL43210", "NO", 100)
	defer p.Close()
	for i := range 8 {
		f, _ := plategen.Render(p, plategen.Scene{Width: 960, Height: 540, Center: image.Pt(480, 200+10*i), PlateWidth: 200, Noise: 3, Seed: 1})
		gocv.IMWrite(filepath.Join(dir, fmt.Sprintf("%02d.jpg", i)), f)
		f.Close()
	}
	return dir
}

// writeConfigSameState copies cfgPath's state directory into a config
// that listens elsewhere, so only the state lock can stop it.
func writeConfigSameState(t *testing.T, cfgPath, listen string) string {
	t.Helper()
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var stateLine string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "state:") {
			stateLine = l
		}
	}
	p := writeConfig(t, listen)
	c, _ := os.ReadFile(p)
	var out []string
	for _, l := range strings.Split(string(c), "\n") {
		if strings.HasPrefix(l, "state:") {
			l = stateLine
		}
		out = append(out, l)
	}
	os.WriteFile(p, []byte(strings.Join(out, "\n")), 0o600)
	return p
}
