package plategen

import (
	"bytes"
	"image"
	"testing"

	"gocv.io/x/gocv"
)

func TestPlateAndRender(t *testing.T) {
	p := Plate("AB12345", "NO", 110)
	defer p.Close()
	if p.Rows() != 110 || p.Cols() != 517 || p.Channels() != 3 {
		t.Fatalf("plate %dx%dx%d", p.Cols(), p.Rows(), p.Channels())
	}
	s := Scene{Width: 640, Height: 360, Center: image.Pt(320, 200), PlateWidth: 150, Yaw: 20, Roll: 5, Blur: 1, Noise: 5, Light: 0.3, Seed: 4}
	a, corners := Render(p, s)
	defer a.Close()
	for _, c := range corners {
		if !c.In(image.Rect(0, 0, 640, 360)) {
			t.Errorf("corner %v outside the frame", c)
		}
	}
	if w := corners[1].X - corners[0].X; w < 120 || w > 150 {
		t.Errorf("plate width in frame %d, want about 150*cos(20°)", w)
	}
	// The same seed renders the same frame; another seed does not.
	b, _ := Render(p, s)
	defer b.Close()
	s.Seed = 5
	c, _ := Render(p, s)
	defer c.Close()
	if !bytes.Equal(a.ToBytes(), b.ToBytes()) || bytes.Equal(a.ToBytes(), c.ToBytes()) {
		t.Error("rendering is not determined by the seed")
	}
	// The plate's white shows where it was placed, and not elsewhere.
	if bright(a, image.Rectangle{Min: corners[0], Max: corners[2]}.Canon()) < 20 {
		t.Error("no white plate pixels inside the corners")
	}
	if bright(a, image.Rect(0, 0, 640, 100)) > 0 {
		t.Error("white pixels far from the plate")
	}
}

// bright counts pixels in r brighter than 200 in every channel.
func bright(m gocv.Mat, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			v := m.GetVecbAt(y, x)
			if v[0] > 200 && v[1] > 200 && v[2] > 200 {
				n++
			}
		}
	}
	return n
}

func TestTwoRowPlate(t *testing.T) {
	p := TwoRowPlate("AB12", "CDE", "GB", 150)
	defer p.Close()
	if p.Rows() != 150 || p.Cols() != 205 {
		t.Fatalf("plate %dx%d", p.Cols(), p.Rows())
	}
	// Dark text in the upper and the lower half, right of the band; a
	// white line between the rows.
	dark := func(r image.Rectangle) int {
		n := 0
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if v := p.GetVecbAt(y, x); v[0] < 60 && v[1] < 60 && v[2] < 60 {
					n++
				}
			}
		}
		return n
	}
	top, bottom, between := image.Rect(60, 15, 195, 65), image.Rect(60, 85, 195, 135), image.Rect(60, 73, 195, 77)
	if dark(top) < 500 || dark(bottom) < 500 || dark(between) > 0 {
		t.Errorf("dark pixels: top %d, bottom %d, between %d", dark(top), dark(bottom), dark(between))
	}
	// The band, blue, over the full height at the left.
	if v := p.GetVecbAt(20, 20); v[0] < 120 || v[2] > 40 {
		t.Errorf("no band at the top left: %v", v)
	}
	if v := p.GetVecbAt(75, 20); v[0] < 120 || v[2] > 40 {
		t.Errorf("no band at the middle left: %v", v)
	}
}
