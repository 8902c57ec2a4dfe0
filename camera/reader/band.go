package reader

import (
	"anprd/camera/ocr"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

// The EU band's colour is reflex blue (Pantone Reflex Blue, about sRGB 0,
// 51, 153): hue 220 degrees, fully saturated, value 0.6. A camera's white
// balance under warm or cold light turns a saturated blue by up to about
// 20 degrees either way and takes some of its saturation; dusk and a dirty
// plate darken it; video compression halves the colour resolution and
// smears it at edges. The bounds below keep that and leave out the
// plate's white and black (saturation near 0, or too dark for the hue to
// mean anything), cyan (180 degrees) and violet (270). OpenCV's 8-bit hue
// is degrees/2.
const (
	bandHueMin = 100 // 200 degrees
	bandHueMax = 125 // 250 degrees
	bandSatMin = 115 // 0.45
	bandValMin = 40  // 0.16
)

// The band's geometry, in the line's height (the crop's): the band is 40
// to 50 mm wide on a plate whose characters are 75 to 80 mm high, so about
// half a line's height; yaw narrows it. It may lie left of the detector's
// box, which often starts at the registration: the window looked at starts
// bandMargin heights left of the crop and ends at bandWindow of its width.
const (
	bandMargin   = 1.2
	bandWindow   = 0.45
	bandMinWidth = 0.3  // narrower blue is a stroke or a sticker, not the band
	bandGap      = 0.12 // a break this narrow in the blue is the code's white letter
	bandColumn   = 0.4  // share of a column's pixels that are band blue for the column to be
	bandShare    = 0.5  // the least mean share over the band's columns
	bandMaxEnd   = 0.35 // the band ends in the first part of the line (Char.X)
)

// LineBand measures the EU band of a line that Lines found, on the pixels
// of the scene: the stretch left of and in the crop CropLine cuts, in the
// recogniser's Char.X units for that crop, that is the band's blue.
func LineBand(img gocv.Mat, q ocr.Quad) plate.Band {
	return measureBand(img, q.Grow(padX, padY))
}

// bandFor is the band's evidence for a line read with recogniser steps of
// the given length (ocr.Line.Step): each stretch of blue ends a step
// earlier. A CTC recogniser places a character at the step where it
// peaked, up to a step from the glyph's centre, so the registration's
// first character, printed on the white just after the blue, can be
// placed on the blue's last step; the band's code is printed in the
// middle of the band, well inside it.
func bandFor(b plate.Band, step float32) plate.Band {
	if len(b.Spans) == 0 || step <= 0 {
		return b
	}
	out := plate.Band{Spans: make([]plate.Span, 0, len(b.Spans))}
	for _, s := range b.Spans {
		if s.To-step > s.From {
			out.Spans = append(out.Spans, plate.Span{From: s.From, To: s.To - step})
		}
	}
	if len(out.Spans) == 0 {
		return plate.Band{}
	}
	return out
}

// measureBand looks for the band at the left of the quad rq whose crop the
// recogniser read: a stretch of mostly band-blue columns, wide enough,
// ending in the line's first part with the plate's white after it.
func measureBand(img gocv.Mat, rq ocr.Quad) plate.Band {
	w, h := rq.Width(), rq.Height()
	if w < 2 || h < 2 || img.Empty() || img.Channels() != 3 {
		return plate.Band{}
	}
	from, to := -bandMargin*h/w, float64(bandWindow)
	at := func(a, b ocr.Point, f float64) ocr.Point {
		return ocr.Point{X: a.X + f*(b.X-a.X), Y: a.Y + f*(b.Y-a.Y)}
	}
	win := ocr.Quad{at(rq[0], rq[1], from), at(rq[0], rq[1], to), at(rq[3], rq[2], to), at(rq[3], rq[2], from)}
	crop := ocr.Crop(img, win)
	defer crop.Close()
	hsv := gocv.NewMat()
	defer hsv.Close()
	gocv.CvtColor(crop, &hsv, gocv.ColorBGRToHSV)
	mask := gocv.NewMat()
	defer mask.Close()
	gocv.InRangeWithScalar(hsv, gocv.NewScalar(bandHueMin, bandSatMin, bandValMin, 0), gocv.NewScalar(bandHueMax, 255, 255, 0), &mask)
	pix, err := mask.DataPtrUint8()
	if err != nil {
		return plate.Band{}
	}
	cols, rows := mask.Cols(), mask.Rows()
	share := make([]float64, cols)
	for y := 0; y < rows; y++ {
		for x, v := range pix[y*cols : (y+1)*cols] {
			if v != 0 {
				share[x]++
			}
		}
	}
	for x := range share {
		share[x] /= float64(rows)
	}
	// Column c lies at Char.X = toX(c) of the recogniser's crop.
	toX := func(c int) float64 { return from + (float64(c)+0.5)/float64(cols)*(to-from) }
	px := float64(cols) / ((to - from) * w) // window columns per frame pixel along the line
	s, e, ok := bandRun(share, bandGap*h*px, bandMinWidth*h*px)
	if !ok || toX(e) > bandMaxEnd {
		return plate.Band{}
	}
	return plate.Band{Spans: []plate.Span{{From: float32(toX(s)), To: float32(toX(e) + 0.5*(to-from)/float64(cols))}}}
}

// bandRun finds, in a window's column shares of band blue, the rightmost
// stretch of blue columns that can be the band: breaks of at most gap
// columns are bridged, and the stretch must be minWidth columns or more
// with a mean share of at least bandShare, and end before the window
// does. It returns the stretch's first and last columns.
func bandRun(share []float64, gap, minWidth float64) (first, last int, ok bool) {
	best := -1
	for c := 0; c < len(share); {
		if share[c] < bandColumn {
			c++
			continue
		}
		s, e := c, c
		for k := c + 1; k < len(share) && float64(k-e-1) <= gap; k++ {
			if share[k] >= bandColumn {
				e = k
			}
		}
		sum := 0.0
		for k := s; k <= e; k++ {
			sum += share[k]
		}
		if float64(e-s+1) >= minWidth && sum/float64(e-s+1) >= bandShare {
			first, last, best = s, e, e
		}
		c = e + 1
	}
	// The band ends where the plate's white begins: a blue that runs to
	// the window's edge is a blue plate or something behind it.
	if best < 0 || float64(len(share)-1-best) <= gap {
		return 0, 0, false
	}
	return first, last, true
}
