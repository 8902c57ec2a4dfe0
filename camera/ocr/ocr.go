// Package ocr runs the PP-OCRv4 text detector and recogniser on ONNX
// Runtime: it finds text lines in a frame and reads each with
// per-character confidences and runner-up characters. It knows nothing
// about number plates; package reader turns its lines into plate reads.
//
// An Engine reuses its sessions and buffers between frames and is not safe
// for concurrent use: give each lane its own.
package ocr

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"anprd/camera/onnx"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// Options configure an Engine.
type Options struct {
	ModelsDir string
	// Threads is ONNX Runtime's intra-op thread count; default 1.
	Threads int
	// DetMaxSide bounds the longer side of the image the detector sees;
	// larger finds smaller text but costs time. Default 960.
	DetMaxSide int
	// RecMaxWidth bounds the recogniser's input width; default 320.
	RecMaxWidth int
	// Fold, when set, restricts reading to the characters it maps the
	// recogniser's classes to (returning "" for a class to ignore), and
	// pools the probabilities of the classes that fold together (o and O,
	// full-width and ASCII forms).
	Fold func(class string) string
}

// Engine holds the two sessions and their reusable buffers.
type Engine struct {
	o     Options
	det   *ort.DynamicAdvancedSession
	rec   *ort.DynamicAdvancedSession
	chars []string // class index -> text; 0 is the CTC blank

	groups    [][]int  // with Fold: class indices pooled per folded character
	groupText []string // the folded characters
	mass      []float32

	detBuf  tensorBuf
	recBuf  tensorBuf
	detImg  gocv.Mat  // the frame scaled for the detector, reused
	recImg  gocv.Mat  // the crop scaled for the recogniser, reused
	prob    []float32 // detector output, reused
	bitmap  []byte
	scratch []byte
}

// New creates the sessions. onnx.Load must have been called.
func New(o Options) (*Engine, error) {
	if o.Threads <= 0 {
		o.Threads = 1
	}
	if o.DetMaxSide <= 0 {
		o.DetMaxSide = 960
	}
	if o.RecMaxWidth <= 0 {
		o.RecMaxWidth = 320
	}
	chars, err := loadChars(filepath.Join(o.ModelsDir, onnx.Keys))
	if err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ocr: session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(o.Threads); err != nil {
		return nil, fmt.Errorf("ocr: threads: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("ocr: threads: %w", err)
	}
	// ONNX Runtime's memory pattern plans a buffer per input shape and
	// keeps it: with two 1080p lanes the box held 645 MB resident with it
	// and 476 MB without, at the same speed.
	if err := opts.SetMemPattern(false); err != nil {
		return nil, fmt.Errorf("ocr: memory pattern: %w", err)
	}
	e := &Engine{o: o, chars: chars, detImg: gocv.NewMat(), recImg: gocv.NewMat()}
	if o.Fold != nil {
		e.buildGroups()
	}
	e.det, err = ort.NewDynamicAdvancedSession(filepath.Join(o.ModelsDir, onnx.DetModel),
		[]string{"x"}, []string{"sigmoid_0.tmp_0"}, opts)
	if err != nil {
		e.detImg.Close()
		e.recImg.Close()
		return nil, fmt.Errorf("ocr: detection session: %w", err)
	}
	e.rec, err = ort.NewDynamicAdvancedSession(filepath.Join(o.ModelsDir, onnx.RecModel),
		[]string{"x"}, []string{"softmax_11.tmp_0"}, opts)
	if err != nil {
		e.det.Destroy()
		e.detImg.Close()
		e.recImg.Close()
		return nil, fmt.Errorf("ocr: recognition session: %w", err)
	}
	return e, nil
}

// Close frees the sessions and buffers.
func (e *Engine) Close() {
	e.detBuf.free()
	e.recBuf.free()
	e.det.Destroy()
	e.rec.Destroy()
	e.detImg.Close()
	e.recImg.Close()
}

func (e *Engine) buildGroups() {
	at := map[string]int{}
	for k, c := range e.chars {
		if k == 0 {
			continue
		}
		f := e.o.Fold(c)
		if f == "" {
			continue
		}
		g, ok := at[f]
		if !ok {
			g = len(e.groups)
			at[f] = g
			e.groups = append(e.groups, nil)
			e.groupText = append(e.groupText, f)
		}
		e.groups[g] = append(e.groups[g], k)
	}
	e.mass = make([]float32, len(e.groups))
}

// loadChars reads PaddleOCR's character list: class 0 is the CTC blank,
// classes 1..n the listed characters, and n+1 a space.
func loadChars(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ocr: character list: %w", err)
	}
	defer f.Close()
	chars := []string{""}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		chars = append(chars, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ocr: character list: %w", err)
	}
	return append(chars, " "), nil
}

// tensorBuf keeps an input and output tensor pair for the last shape
// used, so a stream of same-sized frames allocates nothing per frame.
type tensorBuf struct {
	inShape  ort.Shape
	in       *ort.Tensor[float32]
	outShape ort.Shape
	out      *ort.Tensor[float32]
}

func sameShape(a, b ort.Shape) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// get returns tensors of the given shapes, reusing the previous ones when
// the shapes are unchanged.
func (b *tensorBuf) get(in, out ort.Shape) (*ort.Tensor[float32], *ort.Tensor[float32], error) {
	if b.in == nil || !sameShape(b.inShape, in) || !sameShape(b.outShape, out) {
		b.free()
		var err error
		if b.in, err = ort.NewEmptyTensor[float32](in); err != nil {
			return nil, nil, err
		}
		if b.out, err = ort.NewEmptyTensor[float32](out); err != nil {
			b.in.Destroy()
			b.in = nil
			return nil, nil, err
		}
		b.inShape, b.outShape = in.Clone(), out.Clone()
	}
	return b.in, b.out, nil
}

func (b *tensorBuf) free() {
	if b.in != nil {
		b.in.Destroy()
		b.out.Destroy()
		b.in, b.out = nil, nil
	}
}
