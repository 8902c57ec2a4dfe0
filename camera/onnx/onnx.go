// Package onnx loads the ONNX Runtime shared library that `make deps`
// fetched and checks that the models (the PP-OCRv4 text detector and
// recogniser with its character list, and anprd's own plate recogniser)
// are the ones the plate reader is built for. It creates no inference sessions
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
	// PlateModel is anprd's own plate recogniser (train/, its model card
	// train/model/MODEL_CARD.md).
	PlateModel = "anprd-plate-rec.onnx"
)

// ModelFiles are the files the reader needs in its models directory.
var ModelFiles = []string{DetModel, RecModel, Keys, PlateModel}

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
	Dir          string
	Classes      int // PP-OCRv4 recogniser output classes: the characters plus CTC blank and space
	PlateClasses int // plate recogniser output classes: the character set plus the blank
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
	if m.PlateClasses, err = checkPlate(filepath.Join(dir, PlateModel)); err != nil {
		return m, err
	}
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

// PlateMeta is what the plate recogniser's metadata says about its input
// and output (train/anprtrain/export.py writes it).
type PlateMeta struct {
	Charset       string // class k (from 1) is Charset[k-1]; class 0 is the blank or empty slot
	Decode        string // "ctc" or "slots"
	Height, Width int    // input size
	Pad           int    // the pixel value a narrow crop is padded with on the right
}

// ReadPlateMeta reads and checks the plate recogniser's metadata.
func ReadPlateMeta(md *ort.ModelMetadata) (PlateMeta, error) {
	var pm PlateMeta
	get := func(k string) (string, error) {
		v, ok, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("onnx: plate recogniser: no %s in its metadata", k)
		}
		return v, nil
	}
	var err error
	if pm.Charset, err = get("anprd.charset"); err != nil {
		return pm, err
	}
	if pm.Decode, err = get("anprd.decode"); err != nil {
		return pm, err
	}
	if pm.Decode != "ctc" && pm.Decode != "slots" {
		return pm, fmt.Errorf("onnx: plate recogniser: decoding %q, want ctc or slots", pm.Decode)
	}
	for _, f := range []struct {
		key string
		v   *int
		lo  int
		hi  int
	}{{"anprd.input_height", &pm.Height, 8, 256}, {"anprd.input_width", &pm.Width, 8, 1024}, {"anprd.pad_value", &pm.Pad, 0, 255}} {
		s, err := get(f.key)
		if err != nil {
			return pm, err
		}
		if _, err := fmt.Sscan(s, f.v); err != nil || *f.v < f.lo || *f.v > f.hi {
			return pm, fmt.Errorf("onnx: plate recogniser: %s = %q", f.key, s)
		}
	}
	if pm.Charset == "" || len(pm.Charset) > 255 {
		return pm, fmt.Errorf("onnx: plate recogniser: character set of %d", len(pm.Charset))
	}
	return pm, nil
}

// PlateMetaOf opens the plate recogniser at path for its metadata.
func PlateMetaOf(path, input, output string) (PlateMeta, error) {
	s, err := ort.NewDynamicAdvancedSession(path, []string{input}, []string{output}, nil)
	if err != nil {
		return PlateMeta{}, fmt.Errorf("onnx: plate recogniser: %w", err)
	}
	defer s.Destroy()
	md, err := s.GetModelMetadata()
	if err != nil {
		return PlateMeta{}, fmt.Errorf("onnx: plate recogniser: metadata: %w", err)
	}
	defer md.Destroy()
	return ReadPlateMeta(md)
}

// checkPlate checks the plate recogniser's tensors against its metadata
// and returns its class count.
func checkPlate(path string) (int, error) {
	in, out, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return 0, fmt.Errorf("onnx: plate recogniser: %w", err)
	}
	if len(in) != 1 || len(out) != 1 {
		return 0, fmt.Errorf("onnx: plate recogniser: want one input and one output, got %v and %v", in, out)
	}
	pm, err := PlateMetaOf(path, in[0].Name, out[0].Name)
	if err != nil {
		return 0, err
	}
	if len(in) != 1 || len(in[0].Dimensions) != 4 || in[0].Dimensions[1] != 3 ||
		in[0].Dimensions[2] != int64(pm.Height) || in[0].Dimensions[3] != int64(pm.Width) {
		return 0, fmt.Errorf("onnx: plate recogniser input: want one [batch, 3, %d, %d] tensor, got %v", pm.Height, pm.Width, in)
	}
	if len(out) != 1 || len(out[0].Dimensions) != 3 || out[0].Dimensions[2] != int64(len(pm.Charset)+1) {
		return 0, fmt.Errorf("onnx: plate recogniser output: want one [batch, steps, %d] tensor, got %v", len(pm.Charset)+1, out)
	}
	return len(pm.Charset) + 1, nil
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
