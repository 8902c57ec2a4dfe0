package ocr

import (
	"fmt"
	"image"
	"math"
	"path/filepath"

	"anprd/camera/onnx"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// Recogniser names, as camera.recogniser spells them.
const (
	// RecPlate is anprd's own plate recogniser (train/): trained on plates
	// only, it reads the characters plates use and nothing else.
	RecPlate = "plate"
	// RecPPOCR is PP-OCRv4's general text recogniser.
	RecPPOCR = "ppocr"
)

// Recognisers are the names Options.Recogniser takes, the default first.
var Recognisers = []string{RecPPOCR, RecPlate}

// plateRec is the plate recogniser's session and what its metadata says
// about it.
type plateRec struct {
	sess  *ort.DynamicAdvancedSession
	meta  onnx.PlateMeta
	chars []string // class k -> text; 0 is the blank
	steps int      // output steps (CTC) or slots
}

func loadPlate(dir string, opts *ort.SessionOptions) (*plateRec, error) {
	path := filepath.Join(dir, onnx.PlateModel)
	in, out, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("ocr: plate recogniser: %w", err)
	}
	if len(in) != 1 || len(out) != 1 || len(out[0].Dimensions) != 3 {
		return nil, fmt.Errorf("ocr: plate recogniser: want one input and one [batch, steps, classes] output, got %v and %v", in, out)
	}
	meta, err := onnx.PlateMetaOf(path, in[0].Name, out[0].Name)
	if err != nil {
		return nil, err
	}
	p := &plateRec{meta: meta, chars: []string{""}, steps: int(out[0].Dimensions[1])}
	for _, r := range meta.Charset {
		p.chars = append(p.chars, string(r))
	}
	if p.steps <= 0 || int(out[0].Dimensions[2]) != len(p.chars) {
		return nil, fmt.Errorf("ocr: plate recogniser: output %v does not fit its %d classes", out[0].Dimensions, len(p.chars))
	}
	p.sess, err = ort.NewDynamicAdvancedSession(path, []string{in[0].Name}, []string{out[0].Name}, opts)
	if err != nil {
		return nil, fmt.Errorf("ocr: plate recogniser session: %w", err)
	}
	return p, nil
}

// recognizePlate reads crop with the plate recogniser. The crop is scaled
// to the model's height keeping its aspect, squeezed to the model's width
// if wider and padded on the right if narrower, exactly as the training
// prepares its crops (train/anprtrain/data.py prep).
func (e *Engine) recognizePlate(crop gocv.Mat) (Line, error) {
	p := e.plate
	H, W := p.meta.Height, p.meta.Width
	w := int(math.Min(float64(W), math.Max(1, math.Round(float64(crop.Cols())*float64(H)/float64(crop.Rows())))))
	interp := gocv.InterpolationLinear
	if crop.Rows() > H {
		interp = gocv.InterpolationArea
	}
	resized := &e.recImg
	gocv.Resize(crop, resized, image.Pt(w, H), 0, 0, interp)
	in, out, err := e.plateBuf.get(ort.NewShape(1, 3, int64(H), int64(W)), ort.NewShape(1, int64(p.steps), int64(len(p.chars))))
	if err != nil {
		return Line{}, fmt.Errorf("ocr: plate recognition tensors: %w", err)
	}
	pix, err := resized.DataPtrUint8()
	if err != nil {
		return Line{}, fmt.Errorf("ocr: crop data: %w", err)
	}
	data := in.GetData()
	pad := float32(p.meta.Pad)/127.5 - 1
	plane := H * W
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			for c := 0; c < 3; c++ {
				v := pad
				if x < w {
					v = float32(pix[(y*w+x)*3+c])/127.5 - 1
				}
				data[c*plane+y*W+x] = v
			}
		}
	}
	if err := p.sess.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
		return Line{}, fmt.Errorf("ocr: plate recognition: %w", err)
	}
	probs := out.GetData()
	if p.meta.Decode == "slots" {
		return p.decodeSlots(probs), nil
	}
	return p.decodeCTC(probs, float32(w)*float32(p.steps)/float32(W)), nil
}

// decodeCTC is greedy CTC decoding, as decode does for PP-OCR: the best
// class per step, repeats merged, blanks dropped; a character's confidence
// is its best probability over its steps, with the runner-up of that step.
func (p *plateRec) decodeCTC(probs []float32, used float32) Line {
	l := Line{Step: 1 / max(1, used)}
	k := len(p.chars)
	prev := 0
	for t := 0; t < p.steps; t++ {
		row := probs[t*k : (t+1)*k]
		best, second := top2(row)
		if best != 0 {
			alt, altConf := "", float32(0)
			if second > 0 {
				alt, altConf = p.chars[second], row[second]
			}
			l.add(best == prev, p.chars[best], row[best], alt, altConf, min(1, (float32(t)+0.5)/used))
		}
		prev = best
	}
	return l
}

// decodeSlots reads a fixed-slot output: each slot a character or empty
// (class 0). Slots carry no position along the line; characters are spread
// evenly.
func (p *plateRec) decodeSlots(probs []float32) Line {
	var l Line
	k := len(p.chars)
	for s := 0; s < p.steps; s++ {
		row := probs[s*k : (s+1)*k]
		best, second := top2(row)
		if best == 0 {
			continue
		}
		alt, altConf := "", float32(0)
		if second > 0 {
			alt, altConf = p.chars[second], row[second]
		}
		l.Chars = append(l.Chars, Char{Text: p.chars[best], Conf: row[best], Alt: alt, AltConf: altConf})
	}
	for i := range l.Chars {
		l.Chars[i].X = (float32(i) + 0.5) / float32(len(l.Chars))
	}
	if len(l.Chars) > 0 {
		l.Step = 1 / float32(len(l.Chars)) // the places are guesses
	}
	return l
}

// top2 returns the most likely class (the blank included) and the most
// likely character other than it (never the blank; -1 when none): the
// runner-up the plate layer may fix a character to.
func top2(row []float32) (best, second int) {
	best, second = 0, -1
	for k := 1; k < len(row); k++ {
		if row[k] > row[best] {
			best = k
		}
	}
	for k := 1; k < len(row); k++ {
		if k != best && (second < 0 || row[k] > row[second]) {
			second = k
		}
	}
	return best, second
}
