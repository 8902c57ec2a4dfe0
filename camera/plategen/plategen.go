// Package plategen renders synthetic number plates (Norwegian and Swedish
// above all, in one row or two) and places them into scenes with perspective, blur, noise and uneven
// light. The project's own tests and the demo use it, so that no unit test
// needs photographs from outside the repository. It is a test and demo
// fixture maker: the daemon never imports it.
package plategen

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"

	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

var (
	white = color.RGBA{R: 245, G: 245, B: 240, A: 255}
	black = color.RGBA{R: 15, G: 15, B: 15, A: 255}
	blue  = color.RGBA{R: 0, G: 51, B: 153, A: 255} // the EU band
)

// Plate renders text as a one-row plate of country, h pixels high, about
// 4.7 times as wide as high like the 520 x 110 mm EU plate, with the blue
// EU band and its country code at the left where the country's plates
// have one (plate.HasEUBand; other countries get the same layout without
// it). The caller closes the result.
func Plate(text string, country plate.Country, h int) gocv.Mat {
	w := int(float64(h) * 4.7)
	m, left, border := blank(country, w, h, 0.38)
	// Fit the registration in what is left, with the letter and digit
	// groups apart as on a real plate.
	putRows(&m, []string{spaced(text, country)}, left, w-border, border, h)
	return m
}

// TwoRowPlate renders a two-row plate of country, h pixels high and about
// 1.4 times as wide (the 279 x 203 mm square plate of the United Kingdom,
// Norway's plate for imported cars and the like): top over bottom, at the
// left the EU band over the full height where the country has one. The
// caller closes the result.
func TwoRowPlate(top, bottom string, country plate.Country, h int) gocv.Mat {
	w := int(float64(h) * 1.37)
	m, left, border := blank(country, w, h, 0.22)
	putRows(&m, []string{top, bottom}, left, w-border, border, h)
	return m
}

// blank draws a plate's white field, its frame and, where country has
// one, the band of bandShare of the plate's height; it returns where the
// text may start and the frame's width.
func blank(country plate.Country, w, h int, bandShare float64) (gocv.Mat, int, int) {
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(white.B), float64(white.G), float64(white.R), 0), h, w, gocv.MatTypeCV8UC3)
	border := max(1, h/25)
	gocv.Rectangle(&m, image.Rect(border/2, border/2, w-border/2-1, h-border/2-1), black, border)
	left := border * 2
	if code := plate.BandCode(country); code != "" && plate.HasEUBand(country) {
		band := int(float64(h) * bandShare)
		gocv.Rectangle(&m, image.Rect(border, border, border+band, h-border), blue, -1)
		sz := gocv.GetTextSize(code, gocv.FontHersheySimplex, 1, 2)
		scale := float64(h) * 0.28 * (bandShare / 0.38) / float64(sz.Y)
		if float64(sz.X)*scale > float64(band) { // DK, FIN: narrower letters, as on the plates
			scale = float64(band) * 0.9 / float64(sz.X)
		}
		sz = gocv.GetTextSize(code, gocv.FontHersheySimplex, scale, max(1, h/40))
		gocv.PutText(&m, code, image.Pt(border+(band-sz.X)/2, h-border-h/8), gocv.FontHersheySimplex, scale, white, max(1, h/40))
		left = border + band + h/10
	}
	return m, left, border
}

// putRows writes the rows of text one under the other, each centred
// between left and right in its share of the plate's height h, all at
// one size: the largest at which every row fits, with characters up to
// 0.62 of a row's height high.
func putRows(m *gocv.Mat, rows []string, left, right, border, h int) {
	rh := h / len(rows)
	thick := max(2, rh/11)
	scale := math.Inf(1)
	for _, t := range rows {
		sz := gocv.GetTextSize(t, gocv.FontHersheyDuplex, 1, thick)
		scale = math.Min(scale, math.Min(float64(rh)*0.62/float64(sz.Y), float64(right-left-border)/float64(sz.X)))
	}
	for i, t := range rows {
		sz := gocv.GetTextSize(t, gocv.FontHersheyDuplex, scale, thick)
		x := left + (right-left-sz.X)/2
		y := i*rh + (rh+sz.Y)/2
		gocv.PutText(m, t, image.Pt(x, y), gocv.FontHersheyDuplex, scale, black, thick)
	}
}

// spaced puts a space between the letter and digit groups.
func spaced(t string, c plate.Country) string {
	for i := 1; i < len(t); i++ {
		if isDigit(t[i]) != isDigit(t[i-1]) {
			return t[:i] + " " + t[i:]
		}
	}
	return t
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// Scene says where and how a plate appears in a frame.
type Scene struct {
	Width, Height int // frame size
	Center        image.Point
	PlateWidth    int     // plate width in the frame, pixels
	Yaw           float64 // degrees: one side of the plate farther away
	Roll          float64 // degrees: the plate tilted in the image
	Blur          float64 // Gaussian sigma, pixels; 0 for none
	Noise         float64 // standard deviation of pixel noise
	Light         float64 // brightness gradient across the frame, 0..1
	Seed          uint64
}

// Render draws the scene: a grey road and car body with some texture, the
// plate placed by perspective, then blur, light and noise. The caller
// closes the result. It also returns the plate's corners in the frame.
func Render(p gocv.Mat, s Scene) (gocv.Mat, [4]image.Point) {
	rng := rand.New(rand.NewPCG(s.Seed, 7))
	frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 92, 95, 0), s.Height, s.Width, gocv.MatTypeCV8UC3)
	// A car body around the plate and a few dark shapes, so the detector
	// sees more than a plate on a flat field.
	pw := float64(s.PlateWidth)
	body := image.Rect(s.Center.X-int(pw*1.6), s.Center.Y-int(pw*0.9), s.Center.X+int(pw*1.6), s.Center.Y+int(pw*0.5))
	gocv.Rectangle(&frame, body, color.RGBA{R: 40, G: 40, B: 140, A: 255}, -1)
	for i := 0; i < 6; i++ {
		x, y := rng.IntN(s.Width), rng.IntN(s.Height)
		gocv.Rectangle(&frame, image.Rect(x, y, x+20+rng.IntN(120), y+10+rng.IntN(60)), color.RGBA{R: uint8(rng.IntN(120)), G: uint8(rng.IntN(120)), B: uint8(rng.IntN(120)), A: 255}, -1)
	}
	ph := pw * float64(p.Rows()) / float64(p.Cols())
	yaw := s.Yaw * math.Pi / 180
	roll := s.Roll * math.Pi / 180
	// The far side of a yawed plate is shorter and narrower.
	near, far := ph/2, ph/2*(1-0.5*math.Abs(math.Sin(yaw)))
	hw := pw / 2 * math.Cos(yaw)
	lh, rh := near, far
	if s.Yaw < 0 {
		lh, rh = far, near
	}
	corners := [4][2]float64{{-hw, -lh}, {hw, -rh}, {hw, rh}, {-hw, lh}}
	var dst [4]image.Point
	var dstF []gocv.Point2f
	for i, c := range corners {
		x := c[0]*math.Cos(roll) - c[1]*math.Sin(roll) + float64(s.Center.X)
		y := c[0]*math.Sin(roll) + c[1]*math.Cos(roll) + float64(s.Center.Y)
		dst[i] = image.Pt(int(math.Round(x)), int(math.Round(y)))
		dstF = append(dstF, gocv.Point2f{X: float32(x), Y: float32(y)})
	}
	srcV := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{{X: 0, Y: 0}, {X: float32(p.Cols()), Y: 0}, {X: float32(p.Cols()), Y: float32(p.Rows())}, {X: 0, Y: float32(p.Rows())}})
	defer srcV.Close()
	dstV := gocv.NewPoint2fVectorFromPoints(dstF)
	defer dstV.Close()
	m := gocv.GetPerspectiveTransform2f(srcV, dstV)
	defer m.Close()
	gocv.WarpPerspectiveWithParams(p, &frame, m, image.Pt(s.Width, s.Height), gocv.InterpolationLinear, gocv.BorderTransparent, color.RGBA{})

	if s.Blur > 0 {
		gocv.GaussianBlur(frame, &frame, image.Pt(0, 0), s.Blur, s.Blur, gocv.BorderDefault)
	}
	if s.Light > 0 || s.Noise > 0 {
		pix, _ := frame.DataPtrUint8()
		for y := 0; y < s.Height; y++ {
			gain := 1 - s.Light*float64(y)/float64(s.Height)
			for x := 0; x < s.Width*3; x++ {
				i := y*s.Width*3 + x
				v := float64(pix[i])*gain + rng.NormFloat64()*s.Noise
				pix[i] = uint8(math.Max(0, math.Min(255, v)))
			}
		}
	}
	return frame, dst
}
