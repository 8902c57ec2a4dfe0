// Package ocr runs the PP-OCRv4 text detector and a text recogniser on
// ONNX Runtime: it finds text lines in a frame and reads each with
// per-character confidences and runner-up characters. The recogniser is
// PP-OCRv4's general one (RecPPOCR, the default) or anprd's own plate
// recogniser (RecPlate, trained in train/). It knows no plate formats; package reader turns
// its lines into plate reads.
//
// The sessions (Models) are loaded once and shared; each lane reads with
// an Engine of its own, which reuses its buffers between frames.
package ocr

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sync"

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
	// Fold, when set, restricts PP-OCR's reading to the characters it
	// maps the recogniser's classes to (returning "" for a class to
	// ignore), and pools the probabilities of the classes that fold
	// together (o and O, full-width and ASCII forms). The plate
	// recogniser's classes are plate characters already.
	Fold func(class string) string
	// Recogniser is the recogniser an Engine reads with (RecPlate or
	// RecPPOCR); default RecPPOCR, the better of the two on real
	// plates so far (train/model/MODEL_CARD.md has the figures).
	Recogniser string
	// Recognisers are the recognisers Load opens, for engines of several
	// kinds (NewEngineFor); default just Recogniser.
	Recognisers []string
}

// Models are the detector and recogniser sessions, loaded once per
// process and shared by every lane's Engine: ONNX Runtime runs a session
// from several threads at once, and the sessions (their weights and their
// memory arenas) are most of a reader's memory.
type Models struct {
	o     Options
	detMu sync.Mutex
	det   *ort.DynamicAdvancedSession
	rec   *ort.DynamicAdvancedSession // PP-OCR's, nil when not loaded
	chars []string                    // PP-OCR class index -> text; 0 is the CTC blank
	plate *plateRec                   // nil when not loaded

	groups    [][]int  // with Fold: class indices pooled per folded character
	groupText []string // the folded characters
}

// Engine reads with shared Models and keeps its own buffers; it is not
// safe for concurrent use.
type Engine struct {
	*Models
	own   bool   // Close closes the Models too (New)
	kind  string // the recogniser it reads with
	plate *plateRec

	mass     []float32
	detBuf   tensorBuf
	recBuf   tensorBuf
	plateBuf tensorBuf
	detImg   gocv.Mat  // the frame scaled for the detector, reused
	recImg   gocv.Mat  // the crop scaled for the recogniser, reused
	prob     []float32 // detector output, reused
	bitmap   []byte
	scratch  []byte
}

// New loads Models for one Engine of its own: Close frees both.
func New(o Options) (*Engine, error) {
	m, err := Load(o)
	if err != nil {
		return nil, err
	}
	e := m.NewEngine()
	e.own = true
	return e, nil
}

// NewEngine returns an Engine that reads with m and its Options'
// Recogniser. Close it before m.
func (m *Models) NewEngine() *Engine {
	e, _ := m.NewEngineFor(m.o.Recogniser) // Load opened it
	return e
}

// NewEngineFor returns an Engine that reads with the named recogniser,
// which Load must have opened. Close it before m.
func (m *Models) NewEngineFor(name string) (*Engine, error) {
	if name == "" {
		name = m.o.Recogniser
	}
	switch {
	case name == RecPlate && m.plate != nil, name == RecPPOCR && m.rec != nil:
	default:
		return nil, fmt.Errorf("ocr: recogniser %q is not loaded (have %v)", name, m.o.Recognisers)
	}
	return &Engine{Models: m, kind: name, plate: m.plate, detImg: gocv.NewMat(), recImg: gocv.NewMat(), mass: make([]float32, len(m.groups))}, nil
}

// Recogniser is the name of the recogniser e reads with.
func (e *Engine) Recogniser() string { return e.kind }

// Load creates the sessions. onnx.Load must have been called.
func Load(o Options) (*Models, error) {
	if o.Threads <= 0 {
		o.Threads = 1
	}
	if o.DetMaxSide <= 0 {
		o.DetMaxSide = 960
	}
	if o.RecMaxWidth <= 0 {
		o.RecMaxWidth = 320
	}
	if o.Recogniser == "" {
		o.Recogniser = RecPPOCR
	}
	if len(o.Recognisers) == 0 {
		o.Recognisers = []string{o.Recogniser}
	}
	want := map[string]bool{o.Recogniser: true}
	for _, r := range o.Recognisers {
		want[r] = true
	}
	for r := range want {
		if r != RecPlate && r != RecPPOCR {
			return nil, fmt.Errorf("ocr: unknown recogniser %q (want %s or %s)", r, RecPlate, RecPPOCR)
		}
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
	// and 476 MB without, at the same speed. Its memory arena stays on:
	// without it glibc's heap grew past 1 GB.
	if err := opts.SetMemPattern(false); err != nil {
		return nil, fmt.Errorf("ocr: memory pattern: %w", err)
	}
	m := &Models{o: o}
	m.det, err = ort.NewDynamicAdvancedSession(filepath.Join(o.ModelsDir, onnx.DetModel),
		[]string{"x"}, []string{"sigmoid_0.tmp_0"}, opts)
	if err != nil {
		return nil, fmt.Errorf("ocr: detection session: %w", err)
	}
	if want[RecPPOCR] {
		if m.chars, err = loadChars(filepath.Join(o.ModelsDir, onnx.Keys)); err != nil {
			m.Close()
			return nil, err
		}
		if o.Fold != nil {
			m.buildGroups()
		}
		m.rec, err = ort.NewDynamicAdvancedSession(filepath.Join(o.ModelsDir, onnx.RecModel),
			[]string{"x"}, []string{"softmax_11.tmp_0"}, opts)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("ocr: recognition session: %w", err)
		}
	}
	if want[RecPlate] {
		if m.plate, err = loadPlate(o.ModelsDir, opts); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// Close frees the sessions.
func (m *Models) Close() {
	if m.det != nil {
		m.det.Destroy()
	}
	if m.rec != nil {
		m.rec.Destroy()
	}
	if m.plate != nil {
		m.plate.sess.Destroy()
	}
}

// Close frees the engine's buffers, and its Models when New made them.
func (e *Engine) Close() {
	e.detBuf.free()
	e.recBuf.free()
	e.plateBuf.free()
	e.detImg.Close()
	e.recImg.Close()
	if e.own {
		e.Models.Close()
	}
}

func (m *Models) buildGroups() {
	m.groups, m.groupText = nil, nil
	at := map[string]int{}
	for k, c := range m.chars {
		if k == 0 {
			continue
		}
		f := m.o.Fold(c)
		if f == "" {
			continue
		}
		g, ok := at[f]
		if !ok {
			g = len(m.groups)
			at[f] = g
			m.groups = append(m.groups, nil)
			m.groupText = append(m.groupText, f)
		}
		m.groups[g] = append(m.groups[g], k)
	}
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
