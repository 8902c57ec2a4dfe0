package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"anprd/camera/reader"

	"gocv.io/x/gocv"
)

// sample is one labelled image.
type sample struct {
	Image string
	Plate string
	Box   image.Rectangle // where the plate is in a scene; empty for a crop
}

// loadLabels reads a labelled folder in either format of
// shared/data/README.md: labels.tsv (image<TAB>plate, plate crops) or one
// NAME.txt per image (image x y w h plate, whole scenes).
func loadLabels(dir string) (samples []sample, crops bool, err error) {
	if f, err := os.Open(filepath.Join(dir, "labels.tsv")); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			p := strings.Split(line, "\t")
			if len(p) < 2 {
				return nil, false, fmt.Errorf("labels.tsv: malformed line %q", line)
			}
			samples = append(samples, sample{Image: filepath.Join(dir, p[0]), Plate: p[1]})
		}
		return samples, true, sc.Err()
	}
	txts, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, false, err
	}
	for _, t := range txts {
		b, err := os.ReadFile(t)
		if err != nil {
			return nil, false, err
		}
		s, ok := parseSceneLabel(string(b))
		if !ok {
			continue // not a label file (README and the like)
		}
		s.Image = filepath.Join(dir, s.Image)
		samples = append(samples, s)
	}
	if len(samples) == 0 {
		return nil, false, errors.New("no labels.tsv and no NAME.txt labels in " + dir)
	}
	return samples, false, nil
}

// parseSceneLabel reads a NAME.txt's first line, "image x y w h plate",
// tab-separated or else by spaces. A text without an image, a box of four
// integers and a plate there is not a label.
func parseSceneLabel(text string) (sample, bool) {
	line := strings.TrimSpace(strings.SplitN(text, "\n", 2)[0])
	f := strings.Split(line, "\t")
	if len(f) < 6 {
		f = strings.Fields(line)
	}
	if len(f) < 6 {
		return sample{}, false
	}
	var xywh [4]int
	for i := range xywh {
		n, err := strconv.Atoi(strings.TrimSpace(f[1+i]))
		if err != nil {
			return sample{}, false
		}
		xywh[i] = n
	}
	s := sample{
		Image: strings.TrimSpace(f[0]),
		Plate: strings.TrimSpace(strings.Join(f[5:], " ")),
		Box:   image.Rect(xywh[0], xywh[1], xywh[0]+xywh[2], xywh[1]+xywh[3]),
	}
	return s, s.Image != "" && s.Plate != ""
}

// evalResult is one image's outcome.
type evalResult struct {
	Image string   `json:"image"`
	Truth string   `json:"truth"`
	Reads []string `json:"reads"`
	OK    bool     `json:"ok"`
	MS    float64  `json:"ms"`
	Error string   `json:"error,omitempty"`
	Best  string   `json:"best,omitempty"`  // the read the image is judged by (evalreport.go); none: ""
	Cause string   `json:"cause,omitempty"` // why a miss is one
}

// evalSummary is what eval reports for one reader setting.
type evalSummary struct {
	Dir        string       `json:"dir"`
	Setting    string       `json:"setting,omitempty"` // FLAG=VALUE with -compare
	Images     int          `json:"images"`
	Exact      int          `json:"exact"`
	Accuracy   float64      `json:"accuracy"`
	P50MS      float64      `json:"ms_p50"`
	P95MS      float64      `json:"ms_p95"`
	Misses     []missCount  `json:"misses"`
	Characters charErrors   `json:"characters"`
	Results    []evalResult `json:"results"`
	// ReadOthersMissed: with -compare, the images this setting read and
	// another missed.
	ReadOthersMissed int `json:"read_others_missed,omitempty"`
}

// evalComparison is what eval -compare reports.
type evalComparison struct {
	Dir  string `json:"dir"`
	Flag string `json:"flag"`
	// VerdictsDiffer counts the images read with one setting and missed
	// with another; ReadsDiffer those whose reads are not all the same.
	VerdictsDiffer int           `json:"verdicts_differ"`
	ReadsDiffer    int           `json:"reads_differ"`
	Runs           []evalSummary `json:"runs"`
}

// setting is one reader configuration that eval runs; label names it in
// the report ("" when there is only one).
type setting struct {
	label string
	rf    readerFlags
}

// settings are the reader configurations to run: the flags as given or,
// with compare "FLAG=V1|V2|...", one per value of that reader flag, the
// others as given. Each value is set on fs and rf copied, so that every
// flag readerFlags registers can be compared without eval knowing it.
func settings(fs *flag.FlagSet, rf *readerFlags, compare string) ([]setting, error) {
	if compare == "" {
		return []setting{{rf: *rf}}, nil
	}
	own := flag.NewFlagSet("", flag.ContinueOnError)
	new(readerFlags).register(own)
	name, list, ok := strings.Cut(compare, "=")
	if !ok || own.Lookup(name) == nil {
		var names []string
		own.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		return nil, fmt.Errorf("-compare %q: want FLAG=VALUE|VALUE... for a reader flag: %s", compare, strings.Join(names, ", "))
	}
	var given bool
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	if given {
		return nil, fmt.Errorf("-compare %s and -%s: give its values in -compare only", name, name)
	}
	values := strings.Split(list, "|")
	if len(values) < 2 {
		return nil, fmt.Errorf("-compare %q: give two values or more, separated by |", compare)
	}
	var out []setting
	for _, v := range values {
		if err := fs.Set(name, v); err != nil {
			return nil, fmt.Errorf("-compare %s=%s: %v", name, v, err)
		}
		out = append(out, setting{label: name + "=" + v, rf: *rf})
	}
	return out, nil
}

// runEval scores the reader on a labelled folder with the convention of
// shared/data/README.md: an image counts as read when any reported plate
// equals the truth (normalised, O and 0 the same). With -compare it reads
// each image with one reader per setting and reports them side by side.
func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf readerFlags
	rf.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object instead of lines")
	compare := fs.String("compare", "", "read with one reader per value in `FLAG=V1|V2...` of a reader flag above (e.g. 'countries=NO,SE|': two lists, the second empty) and report the settings side by side")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: anprctl eval [flags] DIR\n\nPrints a line per image, the summary line, the misses by cause and the character errors.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	sets, err := settings(fs, &rf, *compare)
	if err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 2
	}
	samples, crops, err := loadLabels(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 1
	}
	readers := make([]*reader.Reader, len(sets))
	for i, s := range sets {
		rd, closeFn, err := s.rf.open()
		if err != nil {
			fmt.Fprintf(stderr, "anprctl: %s%v\n", labelPrefix(s.label), err)
			return 1
		}
		defer closeFn()
		readers[i] = rd
	}

	sums := make([]evalSummary, len(sets))
	ms := make([][]float64, len(sets))
	for i, s := range sets {
		sums[i] = evalSummary{Dir: fs.Arg(0), Setting: s.label, Images: len(samples)}
	}
	for _, s := range samples {
		img := gocv.IMRead(s.Image, gocv.IMReadColor)
		results := make([]evalResult, len(sets))
		for i, rd := range readers {
			reads, d, err := []reader.Read(nil), time.Duration(0), errCannotDecode
			if !img.Empty() {
				reads, d, err = readMat(rd, img, crops)
			}
			r := score(s, reads, d, err)
			if r.Error == "" {
				ms[i] = append(ms[i], r.MS)
			}
			if r.OK {
				sums[i].Exact++
			}
			sums[i].Results = append(sums[i].Results, r)
			results[i] = r
		}
		img.Close()
		if !*asJSON {
			printImage(stdout, results, sets)
		}
	}
	for i := range sums {
		sum := &sums[i]
		if sum.Images > 0 {
			sum.Accuracy = float64(sum.Exact) / float64(sum.Images)
		}
		sum.P50MS, sum.P95MS = percentile(ms[i], 50), percentile(ms[i], 95)
		sum.Misses = missesByCause(sum.Results)
		sum.Characters = characterErrors(sum.Results)
	}
	comparison := evalComparison{Dir: fs.Arg(0), Flag: strings.SplitN(*compare, "=", 2)[0], Runs: sums}
	if len(sums) > 1 {
		comparison.VerdictsDiffer, comparison.ReadsDiffer = disagreement(sums)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(sums) > 1 {
			enc.Encode(comparison)
		} else {
			enc.Encode(sums[0])
		}
		return 0
	}
	for _, sum := range sums {
		fmt.Fprintf(stdout, "images %d  exact %d  accuracy %.1f%%  ms/image p50 %.1f p95 %.1f%s\n",
			sum.Images, sum.Exact, 100*sum.Accuracy, sum.P50MS, sum.P95MS, labelSuffix(sum.Setting))
	}
	if len(sums) > 1 {
		fmt.Fprintf(stdout, "%s: verdicts differ on %d of %d images, reads on %d\n", comparison.Flag, comparison.VerdictsDiffer, len(samples), comparison.ReadsDiffer)
		for _, sum := range sums {
			fmt.Fprintf(stdout, "  read with %s, missed with another: %d\n", sum.Setting, sum.ReadOthersMissed)
		}
	}
	printReport(stdout, sums)
	return 0
}

// printImage writes an image's line: its result with the first setting
// and, indented, those of the other settings whose reads differ from it.
func printImage(w io.Writer, results []evalResult, sets []setting) {
	r := results[0]
	fmt.Fprintf(w, "%s %-44s %-9s %6.1f ms  %s%s\n", mark(r), r.Image, r.Truth, r.MS, strings.Join(r.Reads, " "), resultSuffix(r))
	for i, o := range results[1:] {
		if !sameReads(r, o) {
			fmt.Fprintf(w, "  %s %-42s %-9s %6.1f ms  %s%s\n", mark(o), sets[i+1].label, o.Truth, o.MS, strings.Join(o.Reads, " "), resultSuffix(o))
		}
	}
}

func mark(r evalResult) string {
	if r.OK {
		return "ok  "
	}
	return "MISS"
}

// resultSuffix is a miss's error or cause.
func resultSuffix(r evalResult) string {
	switch {
	case r.Error != "":
		return errSuffix(r.Error)
	case !r.OK:
		return "  [" + r.Cause + "]"
	}
	return ""
}

func labelSuffix(l string) string {
	if l == "" {
		return ""
	}
	return "  " + l
}

func labelPrefix(l string) string {
	if l == "" {
		return ""
	}
	return l + ": "
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return "  error: " + e
}

// percentile is the nearest-rank percentile of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return rank(s, p)
}

// rank is the nearest-rank p-th percentile (0-100) of sorted, which must
// not be empty. Every figure anprctl prints uses it.
func rank[T any](sorted []T, p float64) T {
	i := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	return sorted[max(0, min(len(sorted)-1, i))]
}
