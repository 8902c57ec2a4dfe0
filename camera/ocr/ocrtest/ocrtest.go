// Package ocrtest gives tests the real ONNX Runtime and PP-OCRv4 models
// that `make deps` fetched, and skips the test when they are absent. It
// is for tests only.
package ocrtest

import (
	"os"
	"path/filepath"
	"testing"

	"anprd/camera/ocr"
	"anprd/camera/onnx"
	"anprd/internal/plate"
)

// Deps returns the runtime library and models directory: under
// $ANPRD_DEPS_DIR (make test sets it) or else the repository's .deps,
// found from the test's package directory.
func Deps(t testing.TB) (lib, models string) {
	t.Helper()
	d := os.Getenv("ANPRD_DEPS_DIR")
	if d == "" {
		d = findDeps()
		if d == "" {
			t.Skip("no .deps: run 'make deps'")
		}
	}
	return filepath.Join(d, "lib/libonnxruntime.so.1"), filepath.Join(d, "models")
}

func findDeps() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, ".deps")
			if _, err := os.Stat(d); err == nil {
				return d
			}
			return ""
		}
	}
	return ""
}

// Engine loads the runtime and returns an engine reading plate
// characters, closed when the test ends.
func Engine(t testing.TB) *ocr.Engine {
	t.Helper()
	return EngineFor(t, "")
}

// EngineFor is Engine with the named recogniser (ocr.RecPlate,
// ocr.RecPPOCR; "" the default).
func EngineFor(t testing.TB, recogniser string) *ocr.Engine {
	t.Helper()
	lib, models := Deps(t)
	if _, err := onnx.Load(lib); err != nil {
		t.Fatal(err)
	}
	e, err := ocr.New(ocr.Options{ModelsDir: models, Fold: plate.FoldGlyph, Recogniser: recogniser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}
