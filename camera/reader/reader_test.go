package reader

import (
	"image"
	"slices"
	"testing"
	"time"

	"anprd/camera/ocr"
	"anprd/camera/ocr/ocrtest"
	"anprd/camera/plategen"
	"anprd/internal/plate"
)

func newReader(t testing.TB) *Reader {
	return New(ocrtest.Engine(t), Options{})
}

// TestReadFrameSynthetic reads rendered Norwegian and Swedish plates in
// scenes of varied geometry, blur, noise and light. Each scene must give
// exactly its plate, with the right country.
func TestReadFrameSynthetic(t *testing.T) {
	r := newReader(t)
	tests := []struct {
		text    string
		country plate.Country
		scene   plategen.Scene
	}{
		{"AB12345", "NO", plategen.Scene{PlateWidth: 200}},
		{"EL43210", "NO", plategen.Scene{PlateWidth: 170, Yaw: 25, Roll: 5, Blur: 1, Noise: 6, Light: 0.4}},
		{"ABC123", "SE", plategen.Scene{PlateWidth: 180, Yaw: -20, Roll: -4}},
		{"XYZ98A", "SE", plategen.Scene{PlateWidth: 150, Blur: 1.2, Noise: 8}},
		{"KF5678", "NO", plategen.Scene{PlateWidth: 260, Roll: 8, Light: 0.5}},
	}
	for i, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			s := tt.scene
			s.Width, s.Height, s.Center, s.Seed = 1280, 720, image.Pt(400+100*i, 380+20*i), uint64(i)
			p := plategen.Plate(tt.text, tt.country, 110)
			defer p.Close()
			f, _ := plategen.Render(p, s)
			defer f.Close()
			reads, err := r.ReadFrame(f, image.Rectangle{})
			if err != nil {
				t.Fatal(err)
			}
			if len(reads) != 1 || reads[0].Plate != tt.text || reads[0].Country != tt.country {
				t.Fatalf("reads = %+v, want one %s (%s)", reads, tt.text, tt.country)
			}
			if reads[0].Conf < 0.8 || len(reads[0].Chars) < len(tt.text) {
				t.Errorf("read %+v: low confidence or missing characters", reads[0])
			}
			// The crop alone reads the same.
			cr, err := r.ReadCrop(p)
			if err != nil || len(cr) != 1 || cr[0].Plate != tt.text {
				t.Errorf("ReadCrop = %+v, %v", cr, err)
			}
		})
	}
}

func TestReadFrameWithoutPlate(t *testing.T) {
	r := newReader(t)
	p := plategen.Plate("AB12345", "NO", 110)
	defer p.Close()
	// The plate is rendered far outside the frame.
	f, _ := plategen.Render(p, plategen.Scene{Width: 1280, Height: 720, Center: image.Pt(-2000, -2000), PlateWidth: 200, Noise: 5, Seed: 9})
	defer f.Close()
	reads, err := r.ReadFrame(f, image.Rectangle{})
	if err != nil || len(reads) != 0 {
		t.Errorf("empty scene: %+v, %v", reads, err)
	}
}

func TestLinesJoinsPlateWords(t *testing.T) {
	q := func(x0, y0, x1, y1 float64) ocr.Box {
		return ocr.Box{Quad: ocr.Quad{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}}
	}
	// "ABC" and "123" 12 px apart on one line; a caption far below; a
	// word of another size beside it.
	got := lines([]ocr.Box{q(160, 100, 220, 130), q(100, 100, 148, 130), q(100, 200, 220, 212), q(232, 95, 300, 160)})
	if len(got) != 5 {
		t.Fatalf("lines = %d, want 4 boxes and 1 join", len(got))
	}
	join := got[4]
	if join[0].X != 100 || join[1].X != 220 {
		t.Errorf("join = %v, want x 100..220", join)
	}
}

func TestPlausibleGeneric(t *testing.T) {
	for s, want := range map[string]bool{"7EAV033": true, "1049338": true, "20140508": false, "ABC": false, "CEMENTO": true, "ABCDEFGHI": false} {
		if plausibleGeneric(s) != want {
			t.Errorf("plausibleGeneric(%q) = %v", s, !want)
		}
	}
}

// BenchmarkReadFrame is one 1280x720 frame with a 200-pixel plate,
// detection to read, one ONNX Runtime thread (the speed figure of issue
// 3): with the detector at the engine's default size (960 pixels wide)
// and at the sizes that lanes set up for their narrowest plate
// (camera.min_plate_width), over the whole frame and inside a 640x384
// lane region around where plates pass.
func BenchmarkReadFrame(b *testing.B) {
	eng := ocrtest.Engine(b)
	p := plategen.Plate("AB12345", "NO", 110)
	defer p.Close()
	f, _ := plategen.Render(p, plategen.Scene{Width: 1280, Height: 720, Center: image.Pt(640, 420), PlateWidth: 200, Yaw: 15, Blur: 0.8, Noise: 5, Seed: 3})
	defer f.Close()
	roi := image.Rect(320, 228, 960, 612)
	for _, bc := range []struct {
		name     string
		minPlate int
		roi      image.Rectangle
	}{
		{"det960", 0, image.Rectangle{}},
		{"minplate120", 120, image.Rectangle{}},
		{"minplate160", 160, image.Rectangle{}},
		{"minplate200", 200, image.Rectangle{}},
		{"roi/det960", 0, roi},
		{"roi/minplate120", 120, roi},
		{"roi/minplate160", 160, roi},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := New(eng, Options{MinPlateWidth: bc.minPlate})
			b.ReportAllocs()
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				if reads, err := r.ReadFrame(f, bc.roi); err != nil || len(reads) != 1 || reads[0].Plate != "AB12345" {
					b.Fatalf("reads %v, %v", reads, err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-p50")
		})
	}
}
