// Package onnx loads the ONNX Runtime shared library that `make deps`
// fetched and checks that the PP-OCRv4 models and their character list are
// the ones the plate reader is built for. It creates no inference sessions
// and reads no frames; the reader does that.
package onnx

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// File names inside the models directory.
const (
	DetModel = "ch_PP-OCRv4_det_infer.onnx"
	RecModel = "ch_PP-OCRv4_rec_infer.onnx"
	Keys     = "ppocr_keys_v1.txt"
)

var (
	mu      sync.Mutex
	loaded  string // library path the environment was initialised with
	version string
)

// Load initialises ONNX Runtime from the shared library at lib, once per
// process (the library can be loaded only once), and returns its version.
// Loading a different library later is an error.
func Load(lib string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if loaded != "" {
		if loaded != lib {
			return "", fmt.Errorf("onnx: runtime already loaded from %s; cannot load %s too", loaded, lib)
		}
		return version, nil
	}
	if _, err := os.Stat(lib); err != nil {
		return "", fmt.Errorf("onnx: runtime library: %w (run 'make deps', or set reader.onnxruntime_library)", err)
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", fmt.Errorf("onnx: load %s: %w", lib, err)
	}
	loaded, version = lib, ort.GetVersion()
	return version, nil
}

// Models describes the checked model set.
type Models struct {
	Dir     string
	Classes int // recogniser output classes: the characters plus CTC blank and space
}

// CheckModels checks, after Load, that dir holds the detection and
// recognition models with the tensor shapes the reader expects, and that
// the character list matches the recogniser's output width.
func CheckModels(dir string) (Models, error) {
	m := Models{Dir: dir}
	in, out, err := ort.GetInputOutputInfo(filepath.Join(dir, DetModel))
	if err != nil {
		return m, fmt.Errorf("onnx: detection model: %w", err)
	}
	if err := wantShape("detection input", in, 4, 1, 3); err != nil {
		return m, err
	}
	if err := wantShape("detection output", out, 4, 1, 1); err != nil {
		return m, err
	}
	in, out, err = ort.GetInputOutputInfo(filepath.Join(dir, RecModel))
	if err != nil {
		return m, fmt.Errorf("onnx: recognition model: %w", err)
	}
	if err := wantShape("recognition input", in, 4, 1, 3); err != nil {
		return m, err
	}
	if len(out) != 1 || len(out[0].Dimensions) != 3 {
		return m, fmt.Errorf("onnx: recognition output: want one [batch, steps, classes] tensor, got %v", out)
	}
	m.Classes = int(out[0].Dimensions[2])
	n, err := countLines(filepath.Join(dir, Keys))
	if err != nil {
		return m, fmt.Errorf("onnx: character list: %w", err)
	}
	// PaddleOCR's CTC head has one class per listed character, plus the
	// blank at index 0 and a space at the end.
	if n+2 != m.Classes {
		return m, fmt.Errorf("onnx: %s lists %d characters but the recogniser has %d classes (want characters+2): the models and list do not belong together", Keys, n, m.Classes)
	}
	return m, nil
}

// wantShape checks a single tensor of rank dims whose axis axis has size
// size (other axes may be dynamic).
func wantShape(what string, io []ort.InputOutputInfo, dims, axis int, size int64) error {
	if len(io) != 1 || len(io[0].Dimensions) != dims || io[0].Dimensions[axis] != size {
		return fmt.Errorf("onnx: %s: want one rank-%d tensor with %d on axis %d, got %v", what, dims, size, axis, io)
	}
	return nil
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	if n == 0 {
		return 0, errors.New(path + " is empty")
	}
	return n, sc.Err()
}
