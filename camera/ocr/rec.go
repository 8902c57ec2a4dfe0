package ocr

import (
	"fmt"
	"image"
	"image/color"
	"math"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

const (
	recHeight  = 48 // the recogniser's input height
	recClasses = 6625
	recStride  = 8 // input columns per output time step
)

var color0 color.RGBA

// Char is one recognised character with the recogniser's confidence and
// the best other character it considered at that place.
type Char struct {
	Text    string
	Conf    float32
	Alt     string // runner-up; "" when none
	AltConf float32
	X       float32 // where along the line it was read, 0 (left) to 1 (right)
}

// Line is a recognised text line.
type Line struct {
	Chars []Char
	// Step is the length, in Char.X units, of one of the recogniser's
	// output steps: a CTC character's X is the centre of a step where it
	// peaked, which may be a step before or after the glyph's centre.
	Step float32
}

// Text is the line as a string.
func (l Line) Text() string {
	s := ""
	for _, c := range l.Chars {
		s += c.Text
	}
	return s
}

// Crop cuts the quad out of img and straightens it into an upright
// rectangle, height by width of the quad. The caller closes the result.
func Crop(img gocv.Mat, q Quad) gocv.Mat {
	w := max(1, int(math.Round(q.Width())))
	h := max(1, int(math.Round(q.Height())))
	src := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{
		{X: float32(q[0].X), Y: float32(q[0].Y)}, {X: float32(q[1].X), Y: float32(q[1].Y)},
		{X: float32(q[2].X), Y: float32(q[2].Y)}, {X: float32(q[3].X), Y: float32(q[3].Y)},
	})
	defer src.Close()
	dst := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{
		{X: 0, Y: 0}, {X: float32(w), Y: 0}, {X: float32(w), Y: float32(h)}, {X: 0, Y: float32(h)},
	})
	defer dst.Close()
	m := gocv.GetPerspectiveTransform2f(src, dst)
	defer m.Close()
	out := gocv.NewMat()
	gocv.WarpPerspectiveWithParams(img, &out, m, image.Pt(w, h), gocv.InterpolationLinear, gocv.BorderReplicate, color0)
	return out
}

// Recognize reads the text in crop (8-bit BGR, text running left to
// right) with the engine's recogniser.
func (e *Engine) Recognize(crop gocv.Mat) (Line, error) {
	if crop.Empty() || crop.Rows() < 2 || crop.Cols() < 2 {
		return Line{}, fmt.Errorf("ocr: empty crop")
	}
	if e.kind == RecPlate {
		return e.recognizePlate(crop)
	}
	return e.recognizePPOCR(crop)
}

// recognizePPOCR reads crop with PP-OCRv4's recogniser.
func (e *Engine) recognizePPOCR(crop gocv.Mat) (Line, error) {
	ratio := float64(crop.Cols()) / float64(crop.Rows())
	w := min(e.o.RecMaxWidth, max(recStride, int(math.Ceil(recHeight*ratio))))
	// Pad the input width to a multiple of 32 so that similar crops share
	// one tensor shape (and so the buffers are reused).
	inW := min(e.o.RecMaxWidth, (w+31)/32*32)
	resized := &e.recImg
	gocv.Resize(crop, resized, image.Pt(w, recHeight), 0, 0, gocv.InterpolationLinear)

	steps := int64(inW / recStride)
	in, out, err := e.recBuf.get(ort.NewShape(1, 3, recHeight, int64(inW)), ort.NewShape(1, steps, recClasses))
	if err != nil {
		return Line{}, fmt.Errorf("ocr: recognition tensors: %w", err)
	}
	pix, err := resized.DataPtrUint8()
	if err != nil {
		return Line{}, fmt.Errorf("ocr: crop data: %w", err)
	}
	data := in.GetData()
	clear(data) // the right padding is 0, mid-grey after normalisation
	plane := recHeight * inW
	for y := 0; y < recHeight; y++ {
		for x := 0; x < w; x++ {
			p := (y*w + x) * 3
			for c := 0; c < 3; c++ {
				data[c*plane+y*inW+x] = float32(pix[p+c])/127.5 - 1
			}
		}
	}
	if err := e.rec.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
		return Line{}, fmt.Errorf("ocr: recognition: %w", err)
	}
	return e.decode(out.GetData(), int(steps), float32(w)/recStride), nil
}

// decode is CTC greedy decoding: the best class at each step, repeats
// merged and blanks dropped. A character's confidence is its best
// probability over the steps it spans; used is how many steps the crop
// covered before the padding. With a fold (Options.Fold), classes are
// pooled into the characters they fold to and only those are read.
func (e *Engine) decode(probs []float32, steps int, used float32) Line {
	if e.groups != nil {
		return e.decodeFolded(probs, steps, used)
	}
	l := Line{Step: 1 / max(1, used)}
	prev := 0
	for t := 0; t < steps; t++ {
		row := probs[t*recClasses : (t+1)*recClasses]
		best, second := 0, -1
		for k := 1; k < len(row); k++ {
			if row[k] > row[best] {
				second, best = best, k
			} else if second < 0 || row[k] > row[second] {
				second = k
			}
		}
		if best != 0 && best < len(e.chars) {
			alt, altConf := "", float32(0)
			if second > 0 && second < len(e.chars) {
				alt, altConf = e.chars[second], row[second]
			}
			l.add(best == prev, e.chars[best], row[best], alt, altConf, min(1, (float32(t)+0.5)/used))
		}
		prev = best
	}
	return l
}

// decodeFolded pools each step's probabilities into the folded
// characters. A step whose blank, or whose mass outside every folded
// character (a dash, a dot, a stray glyph), outweighs the best character
// is a gap.
func (e *Engine) decodeFolded(probs []float32, steps int, used float32) Line {
	l := Line{Step: 1 / max(1, used)}
	prev := -1
	for t := 0; t < steps; t++ {
		row := probs[t*recClasses : (t+1)*recClasses]
		var total float32
		best, second := -1, -1
		var bm, sm float32
		for g, idx := range e.groups {
			var m float32
			for _, k := range idx {
				m += row[k]
			}
			e.mass[g] = m
			total += m
			if m > bm {
				second, sm = best, bm
				best, bm = g, m
			} else if m > sm {
				second, sm = g, m
			}
		}
		other := 1 - total - row[0]
		if best < 0 || row[0] >= bm || other > bm {
			prev = -1
			continue
		}
		alt := ""
		if second >= 0 {
			alt = e.groupText[second]
		}
		l.add(best == prev, e.groupText[best], bm, alt, sm, min(1, (float32(t)+0.5)/used))
		prev = best
	}
	return l
}

// add appends a character, or, when the step repeats the last one,
// keeps the more confident of the two readings.
func (l *Line) add(repeat bool, text string, conf float32, alt string, altConf, x float32) {
	if repeat && len(l.Chars) > 0 {
		c := &l.Chars[len(l.Chars)-1]
		if conf > c.Conf {
			c.Conf, c.Alt, c.AltConf = conf, alt, altConf
		}
		return
	}
	l.Chars = append(l.Chars, Char{Text: text, Conf: conf, Alt: alt, AltConf: altConf, X: x})
}
