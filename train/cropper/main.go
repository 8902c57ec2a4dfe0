// Command cropper cuts the recogniser's training crops out of rendered
// scenes the way anprd's reader cuts them at run time: it runs the
// reader's own text detector and line finding (reader.Lines) on each scene
// and cuts each line with reader.CropLine, then labels each crop with the
// registration characters whose centres lie inside its line. It also cuts
// the lines the renderer asks for (its ground truth with a margin), with
// the same CropLine. It is a development tool that `make model` runs; the
// daemon never uses it.
//
// Input (stdin), one record per scene: a little-endian uint32 length and a
// JSON header (scene), then a uint32 length and the scene's pixels, 8-bit
// BGR, row-major. Output (-out), one record per crop: a uint32 length and a
// JSON header (crop), then a uint32 length and the crop's BGR pixels. A
// line on stderr at the end counts scenes, lines and crops.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"strings"

	"anprd/camera/ocr"
	"anprd/camera/onnx"
	"anprd/camera/reader"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

// scene is what the renderer says about a scene.
type scene struct {
	ID int `json:"id"`
	W  int `json:"w"`
	H  int `json:"h"`
	// MinPlateWidth sets the reader as a lane's camera.min_plate_width
	// does: the detector sees the scene scaled so that a plate this wide
	// would be 80 pixels.
	MinPlateWidth int   `json:"min_plate_width"`
	Rows          []row `json:"rows"`
	// Extra are lines to cut as given (the ground truth with a margin).
	Extra []extra `json:"extra"`
}

type row struct {
	Text  string       `json:"text"`
	Chars [][8]float64 `json:"chars"` // each character's corners x0 y0 .. x3 y3
}

type extra struct {
	Label string     `json:"label"`
	Quad  [8]float64 `json:"quad"`
}

// crop is one training crop.
type crop struct {
	ID    int    `json:"id"`
	Kind  string `json:"kind"` // det: a line the detector found; extra: a line the renderer gave
	Label string `json:"label"`
	Row   int    `json:"row"`
	W     int    `json:"w"`
	H     int    `json:"h"`
}

func main() {
	lib := flag.String("onnxruntime", ".deps/lib/libonnxruntime.so.1", "ONNX Runtime library")
	models := flag.String("models", ".deps/models", "models directory")
	out := flag.String("out", "", "file to write the crops to")
	flag.Parse()
	if err := run(*lib, *models, *out); err != nil {
		fmt.Fprintln(os.Stderr, "cropper:", err)
		os.Exit(1)
	}
}

func run(lib, models, outPath string) error {
	if outPath == "" {
		return errors.New("-out is required")
	}
	if _, err := onnx.Load(lib); err != nil {
		return err
	}
	// Only the detector is used; PP-OCR's recogniser is the one whose
	// files make deps fetches (the plate recogniser is what this trains).
	m, err := ocr.Load(ocr.Options{ModelsDir: models, Threads: 1, Fold: plate.FoldGlyph, Recogniser: ocr.RecPPOCR})
	if err != nil {
		return err
	}
	defer m.Close()
	eng := m.NewEngine()
	defer eng.Close()

	f, err := os.Create(outPath)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	var st stats
	for {
		var s scene
		hdr, err := readRecord(in)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(hdr, &s); err != nil {
			return fmt.Errorf("scene header: %w", err)
		}
		pix, err := readRecord(in)
		if err != nil {
			return fmt.Errorf("scene %d pixels: %w", s.ID, err)
		}
		if len(pix) != s.W*s.H*3 {
			return fmt.Errorf("scene %d: %d bytes of pixels for %dx%d", s.ID, len(pix), s.W, s.H)
		}
		img, err := gocv.NewMatFromBytes(s.H, s.W, gocv.MatTypeCV8UC3, pix)
		if err != nil {
			return err
		}
		err = cutScene(eng, img, s, w, &st)
		img.Close()
		if err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "cropper: scenes %d, lines found %d, labelled %d (mixed rows %d, no characters %d), rows found %d of %d, extra crops %d\n",
		st.scenes, st.lines, st.labelled, st.mixed, st.empty, st.rowsFound, st.rows, st.extra)
	return nil
}

type stats struct {
	scenes, lines, labelled, mixed, empty, rows, rowsFound, extra int
}

func cutScene(eng *ocr.Engine, img gocv.Mat, s scene, w io.Writer, st *stats) error {
	st.scenes++
	st.rows += len(s.Rows)
	r := reader.New(eng, reader.Options{MinPlateWidth: s.MinPlateWidth})
	qs, err := r.Lines(img, image.Rectangle{})
	if err != nil {
		return fmt.Errorf("scene %d: %w", s.ID, err)
	}
	found := make([]bool, len(s.Rows))
	for _, q := range qs {
		st.lines++
		label, ri, ok := labelOf(q, s.Rows)
		switch {
		case ri == -2:
			st.mixed++
			continue
		case !ok:
			st.empty++
			continue
		}
		if label == s.Rows[ri].Text {
			found[ri] = true
		}
		st.labelled++
		if err := writeCrop(w, img, q, crop{ID: s.ID, Kind: "det", Label: label, Row: ri}); err != nil {
			return err
		}
	}
	for _, f := range found {
		if f {
			st.rowsFound++
		}
	}
	for _, e := range s.Extra {
		st.extra++
		q := ocr.Quad{{X: e.Quad[0], Y: e.Quad[1]}, {X: e.Quad[2], Y: e.Quad[3]}, {X: e.Quad[4], Y: e.Quad[5]}, {X: e.Quad[6], Y: e.Quad[7]}}
		if err := writeCrop(w, img, q, crop{ID: s.ID, Kind: "extra", Label: e.Label, Row: -1}); err != nil {
			return err
		}
	}
	return nil
}

// labelOf is the text of the characters whose centres lie inside q: the
// characters of one row, in order, with none of that row's skipped between
// them. ri is the row, -1 when no character is inside and -2 when q holds
// characters of two rows or not a run of one.
func labelOf(q ocr.Quad, rows []row) (label string, ri int, ok bool) {
	ri = -1
	var b strings.Builder
	for i, r := range rows {
		first, last := -1, -1
		n := 0
		for k, c := range r.Chars {
			cx := (c[0] + c[2] + c[4] + c[6]) / 4
			cy := (c[1] + c[3] + c[5] + c[7]) / 4
			if inside(q, cx, cy) {
				if first < 0 {
					first = k
				}
				last = k
				n++
			}
		}
		if n == 0 {
			continue
		}
		if ri >= 0 || n != last-first+1 || len(r.Text) != len(r.Chars) {
			return "", -2, false
		}
		ri = i
		b.WriteString(r.Text[first : last+1])
	}
	return b.String(), ri, ri >= 0
}

// inside reports whether (x, y) is inside the convex quad.
func inside(q ocr.Quad, x, y float64) bool {
	var pos, neg bool
	for i := range q {
		a, b := q[i], q[(i+1)%4]
		c := (b.X-a.X)*(y-a.Y) - (b.Y-a.Y)*(x-a.X)
		pos = pos || c > 0
		neg = neg || c < 0
	}
	return !(pos && neg)
}

func writeCrop(w io.Writer, img gocv.Mat, q ocr.Quad, c crop) error {
	m := reader.CropLine(img, q)
	defer m.Close()
	c.W, c.H = m.Cols(), m.Rows()
	if !m.IsContinuous() {
		return errors.New("crop is not continuous")
	}
	hdr, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := writeRecord(w, hdr); err != nil {
		return err
	}
	return writeRecord(w, m.ToBytes())
}

func readRecord(r io.Reader) ([]byte, error) {
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return nil, err
	}
	if n > 64<<20 {
		return nil, fmt.Errorf("record of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func writeRecord(w io.Writer, b []byte) error {
	if err := binary.Write(w, binary.LittleEndian, uint32(len(b))); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}
