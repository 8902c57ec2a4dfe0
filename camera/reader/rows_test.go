package reader

import (
	"image"
	"testing"

	"anprd/camera/ocr"
	"anprd/camera/ocr/ocrtest"
	"anprd/camera/plategen"
	"anprd/internal/plate"
)

func rect(x0, y0, x1, y1 float64) ocr.Quad {
	return ocr.Quad{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
}

func TestStacked(t *testing.T) {
	top := rect(100, 100, 200, 140)
	for _, tt := range []struct {
		name   string
		bottom ocr.Quad
		ok     bool
	}{
		{"same width under it", rect(102, 150, 198, 190), true},
		{"narrower row within the span", rect(120, 148, 185, 188), true},
		{"wider row under a narrow one", rect(60, 148, 240, 188), true},
		{"boxes overlapping a little", rect(100, 130, 200, 170), true},
		{"too far below", rect(100, 180, 200, 220), false},
		{"beside it", rect(210, 100, 300, 140), false},
		{"above it", rect(100, 40, 200, 80), false},
		{"shifted off to one side", rect(170, 150, 290, 190), false},
		{"much smaller text", rect(110, 145, 190, 160), false},
		{"a wider row only half under it", rect(150, 150, 400, 190), false},
	} {
		if _, ok := stacked(top, tt.bottom); ok != tt.ok {
			t.Errorf("%s: stacked = %v", tt.name, ok)
		}
	}
	// Each row in one pair: the best overlapping.
	qs := []ocr.Quad{top, rect(150, 150, 200, 190), rect(102, 150, 198, 190)}
	if got := stackedPairs(qs, []int{0, 1, 2}); len(got) != 1 || got[0] != [2]int{0, 2} {
		t.Errorf("stackedPairs = %v", got)
	}
}

// TestJoinRows: the joined line keeps each row a group of its own and
// each row's band with it.
func TestJoinRows(t *testing.T) {
	mk := func(s string) []plate.Char {
		cs := make([]plate.Char, len(s))
		for i := range s {
			cs[i] = plate.Char{R: s[i], Conf: 0.99, X: 0.1 + 0.8*float32(i)/float32(len(s))}
		}
		return cs
	}
	top := &row{ok: true, chars: mk("AB12"), w: 120, h: 40, q: rect(100, 100, 220, 140),
		band: plate.Band{Spans: []plate.Span{{From: -0.3, To: -0.05}}}}
	bottom := &row{ok: true, chars: append([]plate.Char{{R: 'U', Conf: 0.9, X: 0.03}}, mk("CDE")...), w: 100, h: 40, q: rect(110, 150, 210, 190),
		band: plate.Band{Spans: []plate.Span{{From: -0.4, To: 0.06}}}}
	chars, band, q := joinRows(top, bottom)
	text := ""
	for _, c := range chars {
		text += string(c.R)
	}
	if text != "AB12UCDE" {
		t.Fatalf("joined %s", text)
	}
	for i := 1; i < len(chars); i++ {
		if chars[i].X <= chars[i-1].X || chars[i].X < 0 || chars[i].X > 1 {
			t.Fatalf("joined positions not in order: %+v", chars)
		}
	}
	if g := plate.Groups(chars); g[3] == g[4] || g[0] != g[3] || g[5] != g[7] {
		t.Errorf("groups %v: the rows are not groups of their own", g)
	}
	// The bottom row's blue holds its U and nothing of the top row.
	c := plate.Candidates(chars, band, plate.Options{Countries: []plate.Country{"GB"}})
	if c[0].Text != "AB12CDE" || c[0].Country != "GB" || c[0].Dropped != 1 {
		t.Errorf("candidates %+v of band %+v", c, band)
	}
	if q[0] != top.q[0] || q[2] != bottom.q[2] {
		t.Errorf("quad %v", q)
	}
}

// TestReadTwoRowPlates reads rendered two-row plates in scenes: one read
// each, the rows joined top first.
func TestReadTwoRowPlates(t *testing.T) {
	eng := ocrtest.Engine(t)
	for i, tt := range []struct {
		top, bottom string
		country     plate.Country
		scene       plategen.Scene
	}{
		{"AB12", "CDE", "GB", plategen.Scene{PlateWidth: 180}},
		{"AB", "12345", "NO", plategen.Scene{PlateWidth: 160, Yaw: 15, Blur: 0.8, Noise: 4}},
		{"AB12", "CDE", "GB", plategen.Scene{PlateWidth: 150, Yaw: -20, Roll: 4, Noise: 5}},
	} {
		r := New(eng, Options{Countries: []plate.Country{tt.country}, MinPlateWidth: 120})
		s := tt.scene
		s.Width, s.Height, s.Center, s.Seed = 1280, 720, image.Pt(500+100*i, 400), uint64(i)
		p := plategen.TwoRowPlate(tt.top, tt.bottom, tt.country, 150)
		f, _ := plategen.Render(p, s)
		reads, err := r.ReadFrame(f, image.Rectangle{})
		p.Close()
		f.Close()
		want := tt.top + tt.bottom
		if err != nil || len(reads) != 1 || reads[0].Plate != want || reads[0].Country != tt.country {
			t.Errorf("%s/%s: reads %+v, %v; want one %s (%s)", tt.top, tt.bottom, reads, err, want, tt.country)
		}
	}
}
