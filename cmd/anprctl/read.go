package main

import (
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"strings"
	"time"

	"anprd/camera/ocr"
	"anprd/camera/onnx"
	"anprd/camera/reader"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

// readerFlags are the plate reader's settings, shared by read and eval.
// They are plain values: eval -compare copies the struct for each value
// of the flag it compares.
type readerFlags struct {
	lib, models string
	threads     int
	detSide     int
	minPlate    int
	countries   string
	minConf     float64
	recogniser  string
}

func (rf *readerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&rf.lib, "onnxruntime", envOr("ANPRD_ONNXRUNTIME_LIBRARY", "/usr/lib/anprd/libonnxruntime.so.1"), "ONNX Runtime library ($ANPRD_ONNXRUNTIME_LIBRARY)")
	fs.StringVar(&rf.models, "models", envOr("ANPRD_MODELS_DIR", "/usr/share/anprd/models"), "models directory ($ANPRD_MODELS_DIR)")
	fs.IntVar(&rf.threads, "threads", 1, "ONNX Runtime intra-op threads")
	fs.IntVar(&rf.detSide, "det-side", 960, "longest side of the image the text detector sees (when -min-plate-width is 0)")
	fs.IntVar(&rf.minPlate, "min-plate-width", 0, "narrowest plate to read, in pixels; sizes the detector's input as a lane's camera.min_plate_width does (0: use -det-side)")
	fs.StringVar(&rf.countries, "countries", joinCountries(plate.DefaultCountries), "expected plate countries, comma-separated, in order of preference (docs/plates.md); empty: the generic format only")
	fs.Float64Var(&rf.minConf, "min-conf", 0.5, "reads below this confidence are not reported")
	fs.StringVar(&rf.recogniser, "recogniser", ocr.RecPlate+"+"+ocr.RecPPOCR, "what reads the characters, as camera.recogniser: "+strings.Join(ocr.Recognisers, " or ")+", or two joined by + to read each line with both and keep the surer reading")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func joinCountries(cs []plate.Country) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ",")
}

func (rf *readerFlags) open() (*reader.Reader, func(), error) {
	cs := []plate.Country{} // none: only the generic format
	for _, c := range strings.Split(rf.countries, ",") {
		if c = strings.ToUpper(strings.TrimSpace(c)); c != "" {
			if !plate.Known(plate.Country(c)) {
				return nil, nil, fmt.Errorf("-countries: %s is not a country anprd knows plates of", c)
			}
			cs = append(cs, plate.Country(c))
		}
	}
	if _, err := onnx.Load(rf.lib); err != nil {
		return nil, nil, err
	}
	// "plate+ppocr" reads each line with both and keeps the surer reading.
	recs := strings.Split(rf.recogniser, "+")
	if len(recs) > 2 {
		return nil, nil, fmt.Errorf("-recogniser: %q: at most two, as plate+ppocr", rf.recogniser)
	}
	m, err := ocr.Load(ocr.Options{ModelsDir: rf.models, Threads: rf.threads, DetMaxSide: rf.detSide, Fold: plate.FoldGlyph, Recogniser: recs[0], Recognisers: recs})
	if err != nil {
		return nil, nil, err
	}
	var engs []*ocr.Engine
	closeAll := func() {
		for _, e := range engs {
			e.Close()
		}
		m.Close()
	}
	for _, r := range recs {
		e, err := m.NewEngineFor(r)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		engs = append(engs, e)
	}
	o := reader.Options{Countries: cs, MinConf: float32(rf.minConf), MinPlateWidth: rf.minPlate}
	if len(engs) == 2 {
		o.Second = engs[1]
	}
	return reader.New(engs[0], o), closeAll, nil
}

// runRead prints the plates in each image, one line per read.
func runRead(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl read", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf readerFlags
	rf.register(fs)
	crop := fs.Bool("crop", false, "the images are plate crops: recognise without detection")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: anprctl read [flags] IMAGE...\n\nPrints: file, plate, confidence, country, runner-up readings.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	rd, closeFn, err := rf.open()
	if err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 1
	}
	defer closeFn()
	code := 0
	for _, f := range fs.Args() {
		reads, _, err := readImage(rd, f, *crop)
		if err != nil {
			fmt.Fprintf(stderr, "anprctl: %s: %v\n", f, err)
			code = 1
			continue
		}
		if len(reads) == 0 {
			fmt.Fprintf(stdout, "%s\t-\n", f)
		}
		for _, r := range reads {
			fmt.Fprintf(stdout, "%s\t%s\t%.2f\t%s\t%s\n", f, r.Plate, r.Conf, country(r.Country), alts(r.Candidates))
		}
	}
	return code
}

func country(c plate.Country) string {
	if c == "" {
		return "??"
	}
	return string(c)
}

func alts(cs []plate.Candidate) string {
	var s []string
	for i, c := range cs {
		if i == 3 {
			break
		}
		s = append(s, fmt.Sprintf("%s:%.2f", c.Text, c.Conf))
	}
	return strings.Join(s, " ")
}

// readImage decodes path and reads it, timing the read alone (decoding
// excluded).
func readImage(rd *reader.Reader, path string, crop bool) ([]reader.Read, time.Duration, error) {
	img := gocv.IMRead(path, gocv.IMReadColor)
	if img.Empty() {
		return nil, 0, errCannotDecode
	}
	defer img.Close()
	return readMat(rd, img, crop)
}

var errCannotDecode = errors.New("cannot decode image")

// readMat reads a decoded image, timing the read.
func readMat(rd *reader.Reader, img gocv.Mat, crop bool) ([]reader.Read, time.Duration, error) {
	start := time.Now()
	var reads []reader.Read
	var err error
	if crop {
		reads, err = rd.ReadCrop(img)
	} else {
		reads, err = rd.ReadFrame(img, image.Rectangle{})
	}
	return reads, time.Since(start), err
}
