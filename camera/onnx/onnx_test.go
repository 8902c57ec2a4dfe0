package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// depsDir is where `make deps` put the runtime and models. make test sets
// ANPRD_DEPS_DIR; a bare `go test` looks in the repo's .deps.
func depsDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("ANPRD_DEPS_DIR")
	if d == "" {
		d = "../../.deps"
		if _, err := os.Stat(d); err != nil {
			t.Skip("no .deps: run 'make deps'")
		}
	}
	return d
}

func TestLoadMissingLibrary(t *testing.T) {
	mu.Lock()
	already := loaded != ""
	mu.Unlock()
	if already {
		t.Skip("runtime already loaded in this process")
	}
	_, err := Load(filepath.Join(t.TempDir(), "libonnxruntime.so.1"))
	if err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("missing library: %v", err)
	}
}

func TestLoadAndCheckModels(t *testing.T) {
	d := depsDir(t)
	lib := filepath.Join(d, "lib/libonnxruntime.so.1")
	v, err := Load(lib)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "1.24.") {
		t.Errorf("ONNX Runtime %s, want the pinned 1.24", v)
	}
	if v2, err := Load(lib); err != nil || v2 != v {
		t.Errorf("second Load = %q, %v", v2, err)
	}
	if _, err := Load(lib + ".other"); err == nil {
		t.Error("loading a second library succeeded")
	}
	m, err := CheckModels(filepath.Join(d, "models"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Classes != 6625 {
		t.Errorf("recogniser classes = %d, want 6625 (PP-OCRv4, ppocr_keys_v1)", m.Classes)
	}

	// A character list that does not belong to the model is caught.
	bad := t.TempDir()
	for _, f := range []string{DetModel, RecModel, PlateModel} {
		if err := os.Symlink(filepath.Join(mustAbs(t, d), "models", f), filepath.Join(bad, f)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(bad, Keys), []byte("A\nB\nC\n"), 0o644)
	if _, err := CheckModels(bad); err == nil || !strings.Contains(err.Error(), "do not belong together") {
		t.Errorf("mismatched keys: %v", err)
	}
	// The detector in the recogniser's place is caught.
	os.Remove(filepath.Join(bad, RecModel))
	os.Symlink(filepath.Join(mustAbs(t, d), "models", DetModel), filepath.Join(bad, RecModel))
	if _, err := CheckModels(bad); err == nil || !strings.Contains(err.Error(), "recognition output") {
		t.Errorf("detector as recogniser: %v", err)
	}
	if _, err := CheckModels(t.TempDir()); err == nil {
		t.Error("empty models dir passed")
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
