package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"anprd/internal/config"
	"anprd/internal/decide"
	"anprd/sync/central"
	"anprd/sync/mqtt/mqtttest"
)

// demoDeps skips the test unless the plate reader's runtime and models
// (make deps) and Mosquitto are here, and builds anprd (and, if asked,
// anprctl) into a temporary folder.
func demoDeps(t *testing.T, withCtl bool) (anprd, anprctl string) {
	t.Helper()
	if testing.Short() {
		t.Skip("the demo takes a minute; not with -short")
	}
	deps := os.Getenv("ANPRD_DEPS_DIR")
	if deps == "" {
		t.Skip("ANPRD_DEPS_DIR is not set (make test sets it to the ONNX Runtime and models that make deps fetched)")
	}
	lib, models := filepath.Join(deps, "lib", "libonnxruntime.so.1"), filepath.Join(deps, "models")
	for _, p := range []string{lib, models} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("no ONNX deps: %v (run make deps)", err)
		}
	}
	if _, err := os.Stat(mqtttest.Binary); err != nil {
		t.Skipf("mosquitto is not installed (%v); make deps installs it", err)
	}
	// anprd reads these before its config's paths.
	t.Setenv("ANPRD_ONNXRUNTIME_LIBRARY", lib)
	t.Setenv("ANPRD_MODELS_DIR", models)
	bin := t.TempDir()
	pkgs := []string{"anprd/cmd/anprd"}
	if withCtl {
		pkgs = append(pkgs, "anprd/cmd/anprctl")
	}
	cmd := exec.Command("go", append([]string{"build", "-o", bin + "/"}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(bin, "anprd"), filepath.Join(bin, "anprctl")
}

// leftovers lists the processes whose command line names dir, as
// pgrep -af dir would (read from /proc, so that the test needs no procps).
func leftovers(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		if cmd := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")); strings.Contains(cmd, dir) {
			out = append(out, e.Name()+" "+cmd)
		}
	}
	return strings.Join(out, "\n")
}

// TestDemoOnce plays the demo's scenario once, as DEMO_ONCE=1 make demo
// does: a real broker, anprd with its plate reader on the rendered
// cameras and simulated barriers, the permits pushed signed. Every
// expected passage must reach the central side with its classification
// (the permit in use among them), and nothing may be left running.
func TestDemoOnce(t *testing.T) {
	anprd, _ := demoDeps(t, false)
	dir := filepath.Join(t.TempDir(), "demo")
	out := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	ok, err := demo(ctx, demoOptions{dir: dir, config: "../../configs/demo.yaml", anprd: anprd, mosquitto: mqtttest.Binary,
		once: true, timeout: 150 * time.Second}, out)
	t.Logf("demo took %v:\n%s", time.Since(start).Round(100*time.Millisecond), out)
	if err != nil || !ok {
		b, _ := os.ReadFile(filepath.Join(dir, "anprd.log"))
		t.Fatalf("demo: ok %v, err %v\nanprd's log:\n%s", ok, err, b)
	}
	for _, want := range []string{"permit_in_use", "kept_shut", "open_charge", "blocked", "awaiting_payment", "unregistered",
		"demo ok: 10 of 10 passages as expected", "arm on a vehicle 0 times"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if l := leftovers(t, dir); l != "" {
		t.Errorf("still running after the demo:\n%s", l)
	}
	if _, err := os.Stat(filepath.Join(dir, "anprd.pid")); err == nil {
		t.Error("anprd.pid left behind")
	}
}

// TestDemoInterrupt: Ctrl-C (SIGINT) while the demo runs stops anprd and
// the broker in order, the demo exits 0, and nothing is left running.
func TestDemoInterrupt(t *testing.T) {
	anprd, anprctl := demoDeps(t, true)
	dir := filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command(anprctl, "demo", "-dir", dir, "-config", "../../configs/demo.yaml", "-anprd", anprd, "-mosquitto", mqtttest.Binary)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	sc := bufio.NewScanner(stdout)
	running := false
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.HasPrefix(sc.Text(), " #  lane") { // the scenario started
			running = true
			break
		}
	}
	if !running {
		cmd.Wait()
		t.Fatalf("the demo did not get to its scenario:\n%s", strings.Join(seen, "\n"))
	}
	if l := leftovers(t, dir); !strings.Contains(l, "anprd") || !strings.Contains(l, "mosquitto") {
		t.Errorf("anprd and mosquitto are not both running:\n%s", l)
	}
	cmd.Process.Signal(syscall.SIGINT)
	for sc.Scan() {
		seen = append(seen, sc.Text())
	}
	err = cmd.Wait()
	text := strings.Join(seen, "\n")
	if err != nil {
		t.Errorf("demo exit after SIGINT: %v\n%s", err, text)
	}
	for _, want := range []string{"anprd stopped", "mosquitto stopped"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if l := leftovers(t, dir); l != "" {
		t.Errorf("still running after Ctrl-C:\n%s", l)
	}
}

// TestDemoConfig: the demo's copy of configs/demo.yaml is a valid config
// with the demo's ports, state, key and cameras, and absolute paths.
func TestDemoConfig(t *testing.T) {
	dir := t.TempDir()
	if code := runKeys([]string{"gen", "-out", filepath.Join(dir, "central")}, io.Discard, io.Discard); code != 0 {
		t.Fatal("keys gen")
	}
	to := filepath.Join(dir, "anprd.yaml")
	site, err := writeDemoConfig("../../configs/demo.yaml", to, demoConfig{dir: dir, status: "127.0.0.1:40001",
		broker: "tcp://127.0.0.1:40002", cameras: "http://127.0.0.1:40003"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(to, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if site != "demo-garage" || c.Site.ID != site || c.Status.Listen != "127.0.0.1:40001" || c.MQTT.Broker != "tcp://127.0.0.1:40002" ||
		c.State.Dir != filepath.Join(dir, "state") || c.MQTT.CentralKeyFile != filepath.Join(dir, "central.pub") ||
		!filepath.IsAbs(c.Reader.ModelsDir) || !strings.HasSuffix(c.Reader.ModelsDir, "/.deps/models") {
		t.Errorf("config %+v %+v %+v %+v %+v", c.Site, c.Status, c.MQTT, c.State, c.Reader)
	}
	lanes := map[string]config.Lane{}
	for _, l := range c.Lanes {
		lanes[l.ID] = l
	}
	for _, id := range []string{"in-1", "out-1"} {
		l := lanes[id]
		if l.Camera.Source != "http://127.0.0.1:40003/"+id+".mjpg" || l.Gate == nil || !l.Gate.Simulate || l.Camera.MinPlateWidth == 0 {
			t.Errorf("lane %s: %+v %+v", id, l.Camera, l.Gate)
		}
	}
	if _, err := writeDemoConfig("no-such.yaml", to, demoConfig{}); err == nil {
		t.Error("a missing template was accepted")
	}
}

// TestDemoScenario: the scenario is consistent with the permits pushed:
// every visit's car is in the cast, each After names an earlier visit of
// the other lane or the same lane, every class the issue asks for is
// shown, and the permit data is what sync/central reads.
func TestDemoScenario(t *testing.T) {
	classes := map[decide.Class]bool{}
	for i, v := range demoVisits {
		if v.N != i+1 {
			t.Errorf("visit %d numbered %d", i+1, v.N)
		}
		carOf(v.Plate) // panics on a car not in the cast
		if v.After >= v.N {
			t.Errorf("visit %d waits for a later visit %d", v.N, v.After)
		}
		classes[v.Want] = true
	}
	for _, c := range []decide.Class{decide.Permit, decide.PermitInUse, decide.Account, decide.Blocked, decide.AwaitingPayment, decide.Unregistered} {
		if !classes[c] {
			t.Errorf("the scenario never shows %s", c)
		}
	}
	data, err := demoPermits("demo-garage")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := central.ReadRecords(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if len(cs) != 6 {
		t.Errorf("%d records, want 6", len(cs))
	}
}

// TestSynthScenario writes a lane's scenario as a folder of frames: the
// exit's three cars, each coming, waiting and driving through.
func TestSynthScenario(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out-1")
	var out, errb bytes.Buffer
	if code := run([]string{"synth", "-scenario", "out-1", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := 3*(10+approachFrames+2*demoFPS+throughFrames) + 1
	if files, _ := filepath.Glob(filepath.Join(dir, "*.jpg")); len(files) != want || !strings.Contains(out.String(), "3 cars") {
		t.Errorf("%d frames, want %d; %s", len(files), want, out.String())
	}
	if code := run([]string{"synth", "-scenario", "out-9", dir}, &out, &errb); code != 2 {
		t.Errorf("an unknown lane: exit %d", code)
	}
}
