package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"anprd/internal/plate"
)

// sample is one labelled image.
type sample struct {
	Image string
	Plate string
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
		f := strings.Split(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]), "\t")
		if len(f) < 6 {
			f = strings.Fields(string(b))
		}
		if len(f) < 6 {
			continue // not a label file (README and the like)
		}
		samples = append(samples, sample{Image: filepath.Join(dir, f[0]), Plate: f[len(f)-1]})
	}
	if len(samples) == 0 {
		return nil, false, errors.New("no labels.tsv and no NAME.txt labels in " + dir)
	}
	return samples, false, nil
}

// evalResult is one image's outcome.
type evalResult struct {
	Image string   `json:"image"`
	Truth string   `json:"truth"`
	Reads []string `json:"reads"`
	OK    bool     `json:"ok"`
	MS    float64  `json:"ms"`
	Error string   `json:"error,omitempty"`
}

// evalSummary is what eval reports.
type evalSummary struct {
	Dir      string       `json:"dir"`
	Images   int          `json:"images"`
	Exact    int          `json:"exact"`
	Accuracy float64      `json:"accuracy"`
	P50MS    float64      `json:"ms_p50"`
	P95MS    float64      `json:"ms_p95"`
	Results  []evalResult `json:"results"`
}

// runEval scores the reader on a labelled folder with the convention of
// shared/data/README.md: an image counts as read when any reported plate
// equals the truth (normalised, O and 0 the same).
func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf readerFlags
	rf.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object instead of lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: anprctl eval [flags] DIR")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	samples, crops, err := loadLabels(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 1
	}
	rd, closeFn, err := rf.open()
	if err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 1
	}
	defer closeFn()

	sum := evalSummary{Dir: fs.Arg(0), Images: len(samples)}
	var ms []float64
	for _, s := range samples {
		reads, d, err := readImage(rd, s.Image, crops)
		r := evalResult{Image: filepath.Base(s.Image), Truth: plate.Normalize(s.Plate), Reads: []string{}, MS: float64(d.Microseconds()) / 1000}
		if err != nil {
			r.Error = err.Error()
		} else {
			ms = append(ms, r.MS)
		}
		for _, rd := range reads {
			r.Reads = append(r.Reads, rd.Plate)
			r.OK = r.OK || plate.SameForScoring(rd.Plate, s.Plate)
		}
		if r.OK {
			sum.Exact++
		}
		sum.Results = append(sum.Results, r)
		if !*asJSON {
			mark := "ok  "
			if !r.OK {
				mark = "MISS"
			}
			fmt.Fprintf(stdout, "%s %-44s %-9s %6.1f ms  %s%s\n", mark, r.Image, r.Truth, r.MS, strings.Join(r.Reads, " "), errSuffix(r.Error))
		}
	}
	if sum.Images > 0 {
		sum.Accuracy = float64(sum.Exact) / float64(sum.Images)
	}
	sum.P50MS, sum.P95MS = percentile(ms, 50), percentile(ms, 95)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(sum)
		return 0
	}
	fmt.Fprintf(stdout, "images %d  exact %d  accuracy %.1f%%  ms/image p50 %.1f p95 %.1f\n",
		sum.Images, sum.Exact, 100*sum.Accuracy, sum.P50MS, sum.P95MS)
	return 0
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
