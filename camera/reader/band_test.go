package reader

import (
	"image"
	"math"
	"testing"

	"anprd/camera/ocr"
	"anprd/camera/ocr/ocrtest"
	"anprd/camera/plategen"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

func wholeQuad(m gocv.Mat) ocr.Quad {
	w, h := float64(m.Cols()), float64(m.Rows())
	return ocr.Quad{{X: 0, Y: 0}, {X: w, Y: 0}, {X: w, Y: h}, {X: 0, Y: h}}
}

// recolour applies f to every pixel of m (BGR) for which sel is true.
func recolour(m gocv.Mat, sel func(b, g, r int) bool, f func(b, g, r int) (int, int, int)) {
	clamp := func(v int) uint8 { return uint8(max(0, min(255, v))) }
	for y := 0; y < m.Rows(); y++ {
		for x := 0; x < m.Cols(); x++ {
			v := m.GetVecbAt(y, x)
			b, g, r := int(v[0]), int(v[1]), int(v[2])
			if sel(b, g, r) {
				b, g, r = f(b, g, r)
				m.SetUCharAt(y, x*3, clamp(b))
				m.SetUCharAt(y, x*3+1, clamp(g))
				m.SetUCharAt(y, x*3+2, clamp(r))
			}
		}
	}
}

func all(b, g, r int) bool      { return true }
func bandBlue(b, g, r int) bool { return b > r+60 }

// grey turns a pixel's colour to its grey: the band of a camera without
// colour, or a plate without the blue.
func grey(b, g, r int) (int, int, int) { v := (b + g + r) / 3; return v, v, v }

// TestMeasureBand measures the band on rendered plates: where the plate
// has it, in the colours a camera's white balance makes of it, and not
// where the blue is missing, covers the plate or is another colour.
func TestMeasureBand(t *testing.T) {
	gain := func(gb, gg, gr float64) func(b, g, r int) (int, int, int) {
		return func(b, g, r int) (int, int, int) {
			return int(float64(b) * gb), int(float64(g) * gg), int(float64(r) * gr)
		}
	}
	tests := []struct {
		name    string
		country plate.Country
		sel     func(b, g, r int) bool
		f       func(b, g, r int) (int, int, int)
		seen    bool
	}{
		{"Norwegian band", "NO", nil, nil, true},
		{"three letters", "FI", nil, nil, true},
		{"warm white balance", "SE", all, gain(0.8, 1.05, 1.25), true},
		{"cold white balance", "SE", all, gain(1.15, 1.0, 0.8), true},
		{"dusk", "NO", all, gain(0.45, 0.45, 0.45), true},
		{"no colour", "NO", all, grey, false},
		{"band painted grey", "SE", bandBlue, grey, false},
		{"no band on the plate", "CH", nil, nil, false},
		{"no country", "", nil, nil, false},
		{"a blue plate", "", all, func(b, g, r int) (int, int, int) { return 153 + (b-240)/2, 51, (r - 240) / 2 }, false},
		{"a violet band", "NO", bandBlue, func(b, g, r int) (int, int, int) { return 153, 0, 120 }, false},
		{"a cyan band", "NO", bandBlue, func(b, g, r int) (int, int, int) { return 153, 140, 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plategen.Plate("AB12345", tt.country, 110)
			defer p.Close()
			if tt.f != nil {
				recolour(p, tt.sel, tt.f)
			}
			b := measureBand(p, wholeQuad(p))
			if b.Seen() != tt.seen {
				t.Fatalf("band %+v, want seen %v", b, tt.seen)
			}
			if !b.Seen() {
				return
			}
			// plategen's band: a frame of h/25, then 0.38 h of blue.
			end := float64(110/25+41) / float64(p.Cols()) // int(110 * 0.38)
			if s := b.Spans[0]; len(b.Spans) != 1 || math.Abs(float64(s.To)-end) > 0.01 || s.From > 0.02 {
				t.Errorf("band %+v, want the blue up to %.3f", b, end)
			}
		})
	}
}

// TestBandInScene: in a scene the band lies left of the line the detector
// boxed; the blue car around the plate does not make a band of it where
// the plate has none, and never reaches the registration.
func TestBandInScene(t *testing.T) {
	r := newReader(t)
	for i, tt := range []struct {
		country plate.Country
		seen    bool
	}{{"NO", true}, {"SE", true}, {"CH", false}} {
		p := plategen.Plate("AB12345", tt.country, 110)
		f, _ := plategen.Render(p, plategen.Scene{Width: 1280, Height: 720, Center: image.Pt(500+60*i, 400), PlateWidth: 200, Yaw: 10, Noise: 4, Seed: uint64(i)})
		qs, err := r.Lines(f, image.Rectangle{})
		if err != nil || len(qs) == 0 {
			t.Fatalf("%s: lines %v, %v", tt.country, qs, err)
		}
		for _, q := range qs {
			rw := r.recognise(f, q)
			if len(rw.chars) < 7 {
				continue // a word of the line
			}
			b := rw.band
			if tt.seen && !b.Seen() {
				t.Errorf("%s: no band left of %v", tt.country, q)
			}
			for _, s := range b.Spans {
				if s.To > rw.chars[0].X {
					t.Errorf("%s: blue %+v reaches the first character %+v", tt.country, s, rw.chars[0])
				}
			}
		}
		p.Close()
		f.Close()
	}
}

// TestBandEvidenceDecides: the recogniser reads a Swedish plate's band
// letter S; with the band's blue it is dropped, with the band grey (a
// camera that gives no colour) the S is kept, as read.
// TestBandEvidenceDecides reads with PP-OCR's recogniser, which reads the
// band's code (anprd's own is trained to leave it out).
func TestBandEvidenceDecides(t *testing.T) {
	r := New(ocrtest.EngineFor(t, ocr.RecPPOCR), Options{})
	for _, blue := range []bool{true, false} {
		p := plategen.Plate("ABC123", "SE", 110)
		if !blue {
			recolour(p, bandBlue, grey)
		}
		reads, err := r.ReadCrop(p)
		p.Close()
		if err != nil || len(reads) != 1 {
			t.Fatalf("blue %v: %+v, %v", blue, reads, err)
		}
		rd := reads[0]
		if len(rd.Chars) == 0 || rd.Chars[0].R != 'S' {
			t.Fatalf("the recogniser did not read the band's S: %+v", rd.Chars)
		}
		want := "SABC123"
		if blue {
			want = "ABC123"
		}
		if rd.Plate != want || rd.Band.Seen() != blue {
			t.Errorf("blue %v: read %s (%s), band %+v; want %s", blue, rd.Plate, rd.Country, rd.Band, want)
		}
	}
}

func TestBandRun(t *testing.T) {
	run := func(s string) []float64 {
		out := make([]float64, len(s))
		for i := range s {
			out[i] = float64(s[i]-'0') / 9
		}
		return out
	}
	for _, tt := range []struct {
		share       string
		first, last int
		ok          bool
	}{
		{"0099999990000000", 2, 8, true},
		{"9999999990000000", 0, 8, true},  // blue from the window's left edge
		{"0099909990000000", 2, 8, true},  // the code's white letter
		{"0999990099999000", 8, 12, true}, // the band is the blue nearest the text
		{"0099000000000000", 0, 0, false}, // a stroke, too narrow
		{"0099999999999999", 0, 0, false}, // blue to the window's end: not a band
		{"0044444440000000", 0, 0, false}, // too little blue
		{"0099999990000090", 2, 8, true},  // a blue stroke after the band
		{"0000000000000000", 0, 0, false},
	} {
		first, last, ok := bandRun(run(tt.share), 1, 4)
		if ok != tt.ok || ok && (first != tt.first || last != tt.last) {
			t.Errorf("bandRun(%s) = %d, %d, %v; want %d, %d, %v", tt.share, first, last, ok, tt.first, tt.last, tt.ok)
		}
	}
}

// TestBandFor: a character a recogniser step inside the blue's end is the
// registration's first, placed early; the code in the band's middle stays
// on it.
func TestBandFor(t *testing.T) {
	blue := plate.Band{Spans: []plate.Span{{From: 0.03, To: 0.125}}}
	line := []plate.Char{{R: 'S', Conf: 0.9, X: 0.07}, {R: 'H', Conf: 0.6, X: 0.109}, {R: 'B', Conf: 1, X: 0.27},
		{R: 'K', Conf: 1, X: 0.36}, {R: '0', Conf: 1, X: 0.61}, {R: '8', Conf: 1, X: 0.7}, {R: '7', Conf: 1, X: 0.83}}
	cs := plate.Candidates(line, bandFor(blue, 1.0/32), plate.Options{Countries: []plate.Country{"SE"}})
	if len(cs) == 0 || cs[0].Text != "HBK087" || cs[0].Dropped != 1 {
		t.Fatalf("read %+v, want HBK087 with the band's S dropped", cs)
	}
	cs = plate.Candidates(line[1:], bandFor(blue, 1.0/32), plate.Options{Countries: []plate.Country{"SE"}})
	if len(cs) == 0 || cs[0].Text != "HBK087" {
		t.Fatalf("without the code read %+v, want HBK087 kept whole", cs)
	}
	if b := bandFor(plate.Band{Spans: []plate.Span{{From: 0.1, To: 0.12}}}, 0.05); b.Seen() {
		t.Errorf("a stretch narrower than a step is kept: %+v", b)
	}
	if b := bandFor(blue, 0); len(b.Spans) != 1 || b.Spans[0] != blue.Spans[0] {
		t.Errorf("no step changes the band: %+v", b)
	}
}
