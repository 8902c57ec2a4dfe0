package ocr

import (
	"image"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"anprd/camera/onnx"
	"anprd/camera/plategen"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

// plateRow is one output step of the plate recogniser over classes blank,
// A, B, C, 1: mass on the given classes, the rest on the blank.
func plateRow(m map[int]float32) []float32 {
	row := make([]float32, 5)
	rest := float32(1)
	for k, p := range m {
		row[k] = p
		rest -= p
	}
	row[0] += rest
	return row
}

func testPlateRec(steps int) *plateRec {
	return &plateRec{chars: []string{"", "A", "B", "C", "1"}, steps: steps}
}

func TestPlateDecodeCTC(t *testing.T) {
	rows := [][]float32{
		plateRow(map[int]float32{1: 0.9}),          // A
		plateRow(map[int]float32{1: 0.95}),         // A again: one A, 0.95
		plateRow(nil),                              // blank
		plateRow(map[int]float32{1: 0.6, 2: 0.3}),  // a second A, B runner-up
		plateRow(map[int]float32{4: 0.55, 3: 0.1}), // 1
		plateRow(nil),
		plateRow(nil),
		plateRow(nil), // padding: not read
	}
	var probs []float32
	for _, r := range rows {
		probs = append(probs, r...)
	}
	p := testPlateRec(len(rows))
	l := p.decodeCTC(probs, 5)
	if got := l.Text(); got != "AA1" {
		t.Fatalf("text %q, want AA1", got)
	}
	c := l.Chars
	if c[0].Conf != 0.95 || c[1].Alt != "B" || math.Abs(float64(c[1].AltConf)-0.3) > 1e-6 || c[2].Alt != "C" {
		t.Errorf("chars %+v", c)
	}
	// Positions along the used part of the input: step 1 of 5 is 0.3.
	if math.Abs(float64(c[0].X)-0.1) > 1e-6 || math.Abs(float64(c[2].X)-0.9) > 1e-6 {
		t.Errorf("positions %v %v", c[0].X, c[2].X)
	}
	// The runner-up is the likeliest other character, never the blank.
	l = testPlateRec(1).decodeCTC(plateRow(map[int]float32{3: 0.8, 2: 0.05, 4: 0.01}), 1)
	if len(l.Chars) != 1 || l.Chars[0].Alt != "B" {
		t.Errorf("runner-up: %+v", l.Chars)
	}
}

func TestPlateDecodeSlots(t *testing.T) {
	rows := [][]float32{
		plateRow(map[int]float32{2: 0.9}),
		plateRow(nil), // an empty slot between is skipped
		plateRow(map[int]float32{3: 0.7, 4: 0.2}),
		plateRow(nil),
	}
	var probs []float32
	for _, r := range rows {
		probs = append(probs, r...)
	}
	l := testPlateRec(len(rows)).decodeSlots(probs)
	if l.Text() != "BC" || l.Chars[1].Alt != "1" || l.Chars[0].X != 0.25 || l.Chars[1].X != 0.75 {
		t.Errorf("slots %+v", l.Chars)
	}
}

// bothEngines loads the real models with both recognisers.
func bothEngines(t testing.TB) map[string]*Engine {
	d := depsDir(t)
	if _, err := onnx.Load(filepath.Join(d, "lib/libonnxruntime.so.1")); err != nil {
		t.Fatal(err)
	}
	m, err := Load(Options{ModelsDir: filepath.Join(d, "models"), Fold: plate.FoldGlyph, Recognisers: Recognisers})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Engine{}
	for _, r := range Recognisers {
		e, err := m.NewEngineFor(r)
		if err != nil {
			t.Fatal(err)
		}
		out[r] = e
	}
	t.Cleanup(func() {
		for _, e := range out {
			e.Close()
		}
		m.Close()
	})
	return out
}

// plateLine renders a plate into a scene and cuts its text line out the
// way the reader does (the detector's box, grown a little).
func plateLine(t testing.TB, e *Engine, text string, country plate.Country, width int, seed uint64) gocv.Mat {
	p := plategen.Plate(text, country, 110)
	defer p.Close()
	frame, corners := plategen.Render(p, plategen.Scene{Width: 960, Height: 540, Center: image.Pt(480, 300), PlateWidth: width, Yaw: 10, Blur: 0.6, Noise: 4, Seed: seed})
	defer frame.Close()
	boxes, err := e.Detect(frame, image.Rectangle{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	plateBox := image.Rectangle{Min: corners[0], Max: corners[2]}.Canon()
	best := -1
	for i, b := range boxes {
		if b.Quad.Bounds().Overlaps(plateBox) && (best < 0 || b.Quad.Width() > boxes[best].Quad.Width()) {
			best = i
		}
	}
	if best < 0 {
		t.Fatalf("%s: no line found on the plate", text)
	}
	return Crop(frame, boxes[best].Quad.Grow(0.04, -0.05))
}

// TestPlateRecogniser reads rendered Norwegian and Swedish plates (the
// project's own renderer, not the training's) with the plate recogniser:
// the characters of the registration and nothing of the band.
func TestPlateRecogniser(t *testing.T) {
	es := bothEngines(t)
	e := es[RecPlate]
	if e.Recogniser() != RecPlate {
		t.Fatalf("engine reads with %s", e.Recogniser())
	}
	for i, tt := range []struct {
		text    string
		country plate.Country
		width   int
	}{{"AB12345", "NO", 220}, {"EL43210", "NO", 160}, {"ABC123", "SE", 200}, {"XYZ98A", "SE", 130}, {"KF5678", "NO", 180}} {
		c := plateLine(t, e, tt.text, tt.country, tt.width, uint64(i))
		l, err := e.Recognize(c)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		// O and 0 are one glyph on many plates: the recogniser may name
		// either (with the other its runner-up), the plate layer decides.
		if plate.ScoringKey(l.Text()) != plate.ScoringKey(tt.text) {
			t.Errorf("read %q, want %q (%+v)", l.Text(), tt.text, l.Chars)
		}
		for _, ch := range l.Chars {
			if ch.Conf <= 0 || ch.Conf > 1 || ch.X < 0 || ch.X > 1 || ch.Alt == ch.Text {
				t.Errorf("%s: char %+v out of range", tt.text, ch)
			}
		}
	}
	if _, err := Load(Options{ModelsDir: t.TempDir(), Recogniser: "tesseract"}); err == nil {
		t.Error("an unknown recogniser loaded")
	}
	if _, err := e.Models.NewEngineFor("tesseract"); err == nil {
		t.Error("an engine for an unknown recogniser")
	}
}

// BenchmarkRecognize is the time to recognise one plate line with one
// ONNX Runtime thread, for each recogniser (issue 12's figure: the plate
// recogniser at most 3 ms; PP-OCRv4's about 15-18 ms).
func BenchmarkRecognize(b *testing.B) {
	es := bothEngines(b)
	crop := plateLine(b, es[RecPlate], "EL43210", "NO", 200, 7)
	defer crop.Close()
	for _, r := range Recognisers {
		b.Run(r, func(b *testing.B) {
			e := es[r]
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := e.Recognize(crop); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-p50")
		})
	}
}
