package ocr

import (
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"anprd/camera/onnx"
	"anprd/camera/plategen"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

func TestOrderQuadAndUnclip(t *testing.T) {
	q := orderQuad([]image.Point{{110, 20}, {10, 40}, {110, 40}, {10, 20}})
	want := Quad{{10, 20}, {110, 20}, {110, 40}, {10, 40}}
	if q != want {
		t.Fatalf("orderQuad = %v", q)
	}
	// A 100 x 20 kernel grows by 100*20*1.5/(2*120) = 12.5 on each side.
	u := unclip(q, 1.5)
	if math.Abs(u.Width()-125) > 1e-9 || math.Abs(u.Height()-45) > 1e-9 || u[0] != (Point{-2.5, 7.5}) {
		t.Errorf("unclip = %v (%.1f x %.1f)", u, u.Width(), u.Height())
	}
	g := q.Grow(0.1, -0.25)
	if math.Abs(g.Width()-120) > 1e-9 || math.Abs(g.Height()-10) > 1e-9 {
		t.Errorf("Grow = %v", g)
	}
	if !inConvex(q, 50, 30) || inConvex(q, 5, 30) || inConvex(q, 50, 41) {
		t.Error("inConvex wrong")
	}
	if b := q.Bounds(); b != image.Rect(10, 20, 110, 40) {
		t.Errorf("Bounds = %v", b)
	}
}

// decodeEngine has the character list a..., without the models.
func decodeEngine(fold func(string) string) *Engine {
	chars := make([]string, recClasses)
	chars[recClasses-1] = " "
	m := &Models{chars: chars, o: Options{Fold: fold}}
	if fold != nil {
		m.buildGroups()
	}
	return &Engine{Models: m, mass: make([]float32, len(m.groups))}
}

// step is a probability row with mass on the given classes.
func step(m map[int]float32) []float32 {
	row := make([]float32, recClasses)
	rest := float32(1)
	for k, p := range m {
		row[k] = p
		rest -= p
	}
	row[0] += rest
	return row
}

func TestDecode(t *testing.T) {
	e := decodeEngine(nil)
	// Classes 10, 11, 12, 13 stand for A, B, a, -.
	for k, c := range map[int]string{10: "A", 11: "B", 12: "a", 13: "-"} {
		e.chars[k] = c
	}
	rows := [][]float32{
		step(map[int]float32{10: 0.9}),          // A
		step(map[int]float32{10: 0.95}),         // A again: merged, conf 0.95
		step(nil),                               // blank
		step(map[int]float32{10: 0.8, 11: 0.1}), // A after a blank: a second A
		step(map[int]float32{13: 0.7}),          // dash
		step(map[int]float32{12: 0.5, 10: 0.4}), // a (or A)
	}
	var probs []float32
	for _, r := range rows {
		probs = append(probs, r...)
	}
	l := e.decode(probs, len(rows), float32(len(rows)))
	if l.Text() != "AA-a" || l.Chars[0].Conf != 0.95 || l.Chars[1].Alt != "B" {
		t.Errorf("plain decode = %q %+v", l.Text(), l.Chars)
	}
	if x := l.Chars[3].X; math.Abs(float64(x)-5.5/6) > 1e-6 {
		t.Errorf("X of last char = %v", x)
	}

	// Folded: a and A pool into A (0.9), the dash is a gap, so the A
	// after it is a new character.
	e2 := decodeEngine(plate.FoldGlyph)
	for k, c := range map[int]string{10: "A", 11: "B", 12: "a", 13: "-"} {
		e2.chars[k] = c
	}
	e2.buildGroups()
	e2.mass = make([]float32, len(e2.groups))
	l = e2.decode(probs, len(rows), float32(len(rows)))
	if l.Text() != "AAA" || math.Abs(float64(l.Chars[2].Conf)-0.9) > 1e-6 {
		t.Errorf("folded decode = %q %+v", l.Text(), l.Chars)
	}
}

func depsDir(t testing.TB) string {
	d := os.Getenv("ANPRD_DEPS_DIR")
	if d == "" {
		d = "../../.deps"
		if _, err := os.Stat(d); err != nil {
			t.Skip("no .deps: run 'make deps'")
		}
	}
	return d
}

// NewTestEngine loads the real runtime and models for a test.
func newTestEngine(t testing.TB) *Engine {
	d := depsDir(t)
	if _, err := onnx.Load(filepath.Join(d, "lib/libonnxruntime.so.1")); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{ModelsDir: filepath.Join(d, "models"), Fold: plate.FoldGlyph})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestEngineOnSyntheticPlate(t *testing.T) {
	e := newTestEngine(t)
	p := plategen.Plate("AB12345", "NO", 110)
	defer p.Close()
	frame, corners := plategen.Render(p, plategen.Scene{Width: 1280, Height: 720, Center: image.Pt(500, 400), PlateWidth: 220, Yaw: 15, Roll: 3, Blur: 0.7, Noise: 4, Seed: 1})
	defer frame.Close()
	boxes, err := e.Detect(frame, image.Rectangle{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	plateBox := image.Rectangle{Min: corners[0], Max: corners[2]}.Canon()
	var read []string
	for _, b := range boxes {
		if !b.Quad.Bounds().Overlaps(plateBox) {
			continue
		}
		c := Crop(frame, b.Quad)
		l, err := e.Recognize(c)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		read = append(read, l.Text())
		for _, ch := range l.Chars {
			if ch.Conf <= 0 || ch.Conf > 1 || ch.X < 0 || ch.X > 1 {
				t.Errorf("char %+v out of range", ch)
			}
		}
	}
	if got := strings.Join(read, " "); !strings.Contains(got, "12345") || !strings.Contains(got, "AB") {
		t.Errorf("read %q from the plate, want AB and 12345", got)
	}
	// A region that misses the plate finds no text there.
	boxes, err = e.Detect(frame, image.Rect(900, 0, 1280, 200), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boxes {
		if !b.Quad.Bounds().In(image.Rect(900, 0, 1280, 200)) {
			t.Errorf("box %v outside the region", b.Quad.Bounds())
		}
	}
	if _, err := e.Detect(frame, image.Rect(0, 0, 10, 10), 0); err == nil {
		t.Error("a 10x10 region was searched")
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := e.Recognize(empty); err == nil {
		t.Error("empty crop recognised")
	}
}

// TestSharedModels reads with two engines on one set of sessions at once,
// as two lanes do, and gets the same lines from both.
func TestSharedModels(t *testing.T) {
	d := depsDir(t)
	if _, err := onnx.Load(filepath.Join(d, "lib/libonnxruntime.so.1")); err != nil {
		t.Fatal(err)
	}
	m, err := Load(Options{ModelsDir: filepath.Join(d, "models"), Fold: plate.FoldGlyph})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := plategen.Plate("EL43210", "NO", 110)
	defer p.Close()
	frame, _ := plategen.Render(p, plategen.Scene{Width: 960, Height: 540, Center: image.Pt(480, 300), PlateWidth: 200, Seed: 2})
	defer frame.Close()
	read := func(e *Engine) (string, error) {
		boxes, err := e.Detect(frame, image.Rectangle{}, 0.5)
		if err != nil {
			return "", err
		}
		var out []string
		for _, b := range boxes {
			c := Crop(frame, b.Quad)
			l, err := e.Recognize(c)
			c.Close()
			if err != nil {
				return "", err
			}
			out = append(out, l.Text())
		}
		return strings.Join(out, " "), nil
	}
	var got [2]string
	var errs [2]error
	var wg sync.WaitGroup
	for i := range 2 {
		e := m.NewEngine()
		defer e.Close()
		wg.Go(func() {
			for range 3 {
				got[i], errs[i] = read(e)
			}
		})
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || got[0] != got[1] || !strings.Contains(got[0], "43210") {
		t.Errorf("engines read %q (%v) and %q (%v), want the same, with 43210", got[0], errs[0], got[1], errs[1])
	}
}
