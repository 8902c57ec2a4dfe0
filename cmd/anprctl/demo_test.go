package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

// leftovers lists the processes whose command line names dir.
func leftovers(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("pgrep", "-af", dir).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			return "" // none
		}
		t.Fatalf("pgrep: %v", err)
	}
	return strings.TrimSpace(string(out))
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
