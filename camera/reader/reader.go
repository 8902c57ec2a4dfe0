// Package reader turns frames into plate reads: it finds text lines with
// the OCR engine, keeps the ones shaped like a plate, joins the words of a
// plate that the detector split (ABC 123) and the rows of a two-row plate
// (AB12 over CDE), reads them, measures the EU band's blue at each line's
// left on the frame's pixels, and ranks the readings with the plate
// formats the site expects (package plate, which drops a character as the
// band only where these pixels show it). It reads single frames; tracking
// a vehicle over frames is done above it.
package reader

import (
	"image"
	"math"
	"slices"
	"sort"

	"anprd/camera/ocr"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

// Options tune the reader.
type Options struct {
	Countries []plate.Country // expected countries; nil means plate.DefaultCountries
	MinConf   float32         // reads below this are not reported; default 0.5
	MinHeight int             // text lines lower than this many pixels are skipped; default 10
	MaxReads  int             // at most this many reads per frame; default 4
	// MinPlateWidth is the narrowest plate to read, in frame pixels. The
	// detector then sees the frame just large enough for such a plate
	// (see detPlateWidth), and text lines too short to be a plate are not
	// recognised. 0: the detector sees the frame at the OCR engine's
	// DetMaxSide and every line is tried.
	MinPlateWidth int
	// Second, when set, is another recogniser that reads every line too;
	// of the two readings the one the plate layer is surer of is used.
	Second *ocr.Engine
}

// detPlateWidth is how wide a plate must be in the detector's input for
// its text to be found and boxed well enough to read. Measured on
// plates-us, scaling each scene so its plate has this width: 60.4%
// exact at 48 px, 65.8% at 64, 73.9% at 80, 73.4% at 96, 75.2% at 128.
const detPlateWidth = 80

// minLineOfPlate: a plate's text line (words joined) is at least this
// share of the plate's width; the EU band and the margins take the rest.
// minRowOfPlate: a row of a two-row plate holds two characters or more,
// each about a tenth of a one-row plate's width.
const minLineOfPlate, minRowOfPlate = 0.5, 0.2

// The recogniser reads best from a crop a little wider than the
// detector's box (the first and last characters keep their edges) and a
// little lower (less of the plate's frame and the text above and below).
// Measured on plates-us: 67.6% exact without, 75.7% with.
const padX, padY = 0.04, -0.05

// Read is one plate seen in a frame.
type Read struct {
	Plate      string
	Country    plate.Country
	Conf       float32
	Candidates []plate.Candidate // the others, best first
	Quad       ocr.Quad          // where in the frame
	Chars      []plate.Char      // as read (a two-row plate's rows joined)
	Band       plate.Band        // the EU band's blue on the line, as measured
}

// Reader reads plates with one OCR engine; it is not safe for concurrent
// use.
type Reader struct {
	eng *ocr.Engine
	o   Options
}

// New returns a reader using eng.
func New(eng *ocr.Engine, o Options) *Reader {
	if o.MinConf == 0 {
		o.MinConf = 0.5
	}
	if o.MinHeight == 0 {
		o.MinHeight = 10
	}
	if o.MaxReads == 0 {
		o.MaxReads = 4
	}
	return &Reader{eng: eng, o: o}
}

// ReadFrame finds and reads the plates in the part of a scene inside roi
// (empty: all of it).
func (r *Reader) ReadFrame(img gocv.Mat, roi image.Rectangle) ([]Read, error) {
	f, err := r.find(img, roi)
	if err != nil {
		return nil, err
	}
	got := make([]*row, len(f.quads))
	recognise := func(i int) *row {
		if got[i] == nil {
			got[i] = r.recognise(img, f.quads[i])
		}
		return got[i]
	}
	paired := make([]bool, len(f.quads))
	for _, p := range f.pairs {
		paired[p[0]], paired[p[1]] = true, true
	}
	var reads []Read
	for i, q := range f.quads {
		if !f.line[i] || paired[i] {
			continue
		}
		if rw := recognise(i); rw.ok {
			if rd, ok := r.read(rw.chars, rw.band, q, true); ok {
				reads = append(reads, rd)
			}
		}
	}
	// A two-row plate is read row by row and joined; of its three
	// readings the most confident is the plate (and a text under a
	// one-row plate is not a second plate).
	for _, p := range f.pairs {
		top, bottom := recognise(p[0]), recognise(p[1])
		var best Read
		try := func(chars []plate.Char, band plate.Band, q ocr.Quad) {
			if rd, ok := r.read(chars, band, q, true); ok && rd.Conf > best.Conf {
				best = rd
			}
		}
		if top.ok {
			try(top.chars, top.band, top.q)
		}
		if bottom.ok {
			try(bottom.chars, bottom.band, bottom.q)
		}
		if top.ok && bottom.ok {
			try(joinRows(top, bottom))
		}
		if best.Plate != "" {
			reads = append(reads, best)
		}
	}
	return r.best(reads), nil
}

// row is a text line as recognised: its characters, the band's evidence
// and the size of the crop the recogniser read.
type row struct {
	ok    bool
	chars []plate.Char
	band  plate.Band
	q     ocr.Quad // as Lines found it
	w, h  float64  // of the crop, in frame pixels
}

func (r *Reader) recognise(img gocv.Mat, q ocr.Quad) *row {
	crop := CropLine(img, q)
	chars, band, err := r.readLine(crop, func() plate.Band { return LineBand(img, q) })
	crop.Close()
	g := q.Grow(padX, padY)
	rw := &row{q: q, w: g.Width(), h: g.Height()}
	if err != nil {
		return rw
	}
	rw.ok, rw.chars, rw.band = true, chars, band
	return rw
}

// readLine reads a line's crop with the reader's recogniser and, when
// Options.Second is set, with the second too, and returns the plate
// characters and the band's evidence of the reading the plate layer is
// surer of. blue measures the band's blue on the pixels: it is called at
// most once, and only for a reading with characters. The error is the
// first recogniser's, when neither could read the crop.
func (r *Reader) readLine(crop gocv.Mat, blue func() plate.Band) ([]plate.Char, plate.Band, error) {
	var measured *plate.Band
	evidence := func(l ocr.Line, chars []plate.Char) plate.Band {
		if len(chars) == 0 {
			return plate.Band{}
		}
		if measured == nil {
			b := blue()
			measured = &b
		}
		return bandFor(*measured, l.Step)
	}
	var chars []plate.Char
	var band plate.Band
	line, err := r.eng.Recognize(crop)
	if err == nil {
		chars = plateChars(line)
		band = evidence(line, chars)
	}
	if r.o.Second == nil {
		return chars, band, err
	}
	second, err2 := r.o.Second.Recognize(crop)
	if err2 != nil {
		return chars, band, err
	}
	alt := plateChars(second)
	altBand := evidence(second, alt)
	if err != nil || r.sureness(alt, altBand) > r.sureness(chars, band) {
		return alt, altBand, nil
	}
	return chars, band, nil
}

// sureness is the confidence of a line's best plate reading.
func (r *Reader) sureness(chars []plate.Char, band plate.Band) float32 {
	cs := plate.Candidates(chars, band, plate.Options{Countries: r.o.Countries})
	if len(cs) == 0 {
		return 0
	}
	return cs[0].Conf
}

// Lines finds the text lines in the part of a scene inside roi that are
// shaped like a plate's line or like a row of a two-row plate: the
// detector's boxes and, for words side by side, their union. These are
// the lines ReadFrame recognises; the recogniser's training cuts its
// crops from rendered scenes with Lines and CropLine, so that it learns
// from what it is given in the field.
func (r *Reader) Lines(img gocv.Mat, roi image.Rectangle) ([]ocr.Quad, error) {
	f, err := r.find(img, roi)
	if err != nil {
		return nil, err
	}
	return f.quads, nil
}

// found is what the detector found in a frame: the lines and rows worth
// reading, and which of them are stacked as a two-row plate's rows.
type found struct {
	quads []ocr.Quad
	line  []bool   // shaped like a one-row plate's line
	pairs [][2]int // top and bottom row of a two-row plate
}

func (r *Reader) find(img gocv.Mat, roi image.Rectangle) (found, error) {
	boxes, err := r.eng.Detect(img, roi, r.DetectScale())
	if err != nil {
		return found{}, err
	}
	var f found
	var rows []int
	for _, q := range lines(boxes) {
		isLine, isRow := r.shaped(q)
		if !isLine && !isRow {
			continue
		}
		f.quads, f.line = append(f.quads, q), append(f.line, isLine)
		if isRow {
			rows = append(rows, len(f.quads)-1)
		}
	}
	f.pairs = stackedPairs(f.quads, rows)
	return f, nil
}

// shaped says whether q is shaped like a plate's line, and like a row of
// a two-row plate: shorter (a row holds about half a plate's characters;
// two characters are about a fifth of the narrowest plate) and up to
// square (two letters over digits).
func (r *Reader) shaped(q ocr.Quad) (line, row bool) {
	h, w := q.Height(), q.Width()
	if h < float64(r.o.MinHeight) {
		return false, false
	}
	a := w / h
	line = a >= 1.3 && a <= 12 && w >= minLineOfPlate*float64(r.o.MinPlateWidth)
	row = a >= 0.8 && a <= 12 && w >= minRowOfPlate*float64(r.o.MinPlateWidth)
	return line, row
}

// CropLine cuts a line that Lines found out of the scene, with the margins
// the recogniser reads best from. The caller closes the result.
func CropLine(img gocv.Mat, q ocr.Quad) gocv.Mat {
	return ocr.Crop(img, q.Grow(padX, padY))
}

// DetectScale is the scale at which the detector sees frames: 0 when it
// follows the engine's DetMaxSide.
func (r *Reader) DetectScale() float64 {
	if r.o.MinPlateWidth <= 0 {
		return 0
	}
	return min(1, float64(detPlateWidth)/float64(r.o.MinPlateWidth))
}

// ReadCrop reads an image that is already a plate (a crop), without
// detection.
func (r *Reader) ReadCrop(img gocv.Mat) ([]Read, error) {
	w, h := float64(img.Cols()), float64(img.Rows())
	q := ocr.Quad{{X: 0, Y: 0}, {X: w, Y: 0}, {X: w, Y: h}, {X: 0, Y: h}}
	chars, band, err := r.readLine(img, func() plate.Band { return measureBand(img, q) })
	if err != nil {
		return nil, err
	}
	rd, ok := r.read(chars, band, q, false)
	if !ok {
		return nil, nil
	}
	return []Read{rd}, nil
}

// plateChars are a recognised line's plate characters.
func plateChars(line ocr.Line) []plate.Char {
	chars := make([]plate.Char, 0, len(line.Chars))
	for _, c := range line.Chars {
		n := plate.Normalize(c.Text)
		if len(n) != 1 {
			continue // separators, dots, the recogniser's non-Latin guesses
		}
		pc := plate.Char{R: n[0], Conf: c.Conf, X: c.X}
		if a := plate.Normalize(c.Alt); len(a) == 1 {
			pc.Alt, pc.AltConf = a[0], c.AltConf
		}
		chars = append(chars, pc)
	}
	return chars
}

// read ranks the readings of one line.
func (r *Reader) read(chars []plate.Char, band plate.Band, q ocr.Quad, scene bool) (Read, bool) {
	cands := plate.Candidates(chars, band, plate.Options{Countries: r.o.Countries})
	if scene {
		// In a scene a short generic read is more often a sign than a
		// plate.
		cands = slices.DeleteFunc(cands, func(c plate.Candidate) bool {
			return c.Country == "" && !plausibleGeneric(c.Text)
		})
	}
	if len(cands) == 0 || cands[0].Conf < r.o.MinConf {
		return Read{}, false
	}
	return Read{Plate: cands[0].Text, Country: cands[0].Country, Conf: cands[0].Conf,
		Candidates: cands[1:], Quad: q, Chars: chars, Band: band}, true
}

// plausibleGeneric: a plate of unknown format in a scene has four to
// eight characters; one of only digits has at most seven (eight digits
// in a scene are a date).
func plausibleGeneric(s string) bool {
	if len(s) < 4 || len(s) > plate.GenericMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return true
		}
	}
	return len(s) < 8
}

// best keeps one read per plate text, the most confident, and at most
// MaxReads.
func (r *Reader) best(reads []Read) []Read {
	sort.SliceStable(reads, func(i, j int) bool { return reads[i].Conf > reads[j].Conf })
	seen := map[string]bool{}
	out := reads[:0]
	for _, rd := range reads {
		if !seen[rd.Plate] && len(out) < r.o.MaxReads {
			seen[rd.Plate] = true
			out = append(out, rd)
		}
	}
	return out
}

// lines returns the detector's boxes plus, for words that sit side by
// side on one line (a plate's letter and digit groups), their union.
func lines(boxes []ocr.Box) []ocr.Quad {
	sort.Slice(boxes, func(i, j int) bool { return boxes[i].Quad[0].X < boxes[j].Quad[0].X })
	out := make([]ocr.Quad, 0, len(boxes)+2)
	for _, b := range boxes {
		out = append(out, b.Quad)
	}
	for i := range boxes {
		cur := boxes[i].Quad
		merged := false
		for j := i + 1; j < len(boxes); j++ {
			if !sameLine(cur, boxes[j].Quad) {
				continue
			}
			cur = ocr.Quad{cur[0], boxes[j].Quad[1], boxes[j].Quad[2], cur[3]}
			merged = true
		}
		if merged {
			out = append(out, cur)
		}
	}
	return out
}

// sameLine: b starts right of a, at most about a character's height away,
// at the same height and size.
func sameLine(a, b ocr.Quad) bool {
	ha, hb := a.Height(), b.Height()
	if ha == 0 || hb == 0 || hb/ha < 0.7 || hb/ha > 1.45 {
		return false
	}
	h := (ha + hb) / 2
	cya := (a[0].Y + a[3].Y + a[1].Y + a[2].Y) / 4
	cyb := (b[0].Y + b[3].Y + b[1].Y + b[2].Y) / 4
	gap := (b[0].X+b[3].X)/2 - (a[1].X+a[2].X)/2
	return math.Abs(cya-cyb) < 0.35*h && gap > -0.3*h && gap < 1.2*h
}
