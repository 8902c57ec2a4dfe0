package main

// Where the reader fails: each miss's cause, and the character errors of
// the reads against the truth. Pure functions of the reads, so that they
// are tested without the models.

import (
	"cmp"
	"fmt"
	"image"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"anprd/camera/ocr"
	"anprd/camera/reader"
	"anprd/internal/levenshtein"
	"anprd/internal/plate"
)

// The causes of a miss, in the order the report lists them.
const (
	causeNoPlate = "no plate found"     // no read, or none on the labelled plate
	causeWrong   = "wrong characters"   // the best-matching read has the truth's length
	causeExtra   = "extra characters"   // it is longer
	causeMissing = "missing characters" // it is shorter
	causeError   = "read error"         // the image could not be decoded or read
)

var causes = []string{causeNoPlate, causeWrong, causeExtra, causeMissing, causeError}

// Report sizes.
const (
	missExamples = 3  // examples of each cause
	topPairs     = 20 // truth -> read pairs printed
	minSeen      = 5  // a character's error rate is printed from this many sightings
)

// score judges one image's reads against its label. An image read (any
// read equals the truth) is judged by that read; a miss by its
// best-matching read, and has a cause.
func score(s sample, reads []reader.Read, d time.Duration, err error) evalResult {
	r := evalResult{Image: filepath.Base(s.Image), Truth: plate.Normalize(s.Plate), Reads: []string{}, MS: float64(d.Microseconds()) / 1000}
	if err != nil {
		r.Error = err.Error()
	}
	for _, rd := range reads {
		r.Reads = append(r.Reads, rd.Plate)
		if !r.OK && plate.SameForScoring(rd.Plate, s.Plate) {
			r.OK, r.Best = true, rd.Plate
		}
	}
	if r.OK {
		return r
	}
	if i := bestRead(reads, r.Truth, s.Box); i >= 0 {
		r.Best = reads[i].Plate
	}
	r.Cause = missCause(r.Truth, r.Best, err)
	return r
}

// bestRead is the index of the read a miss is judged by, -1 for none: of
// the reads on the labelled plate (all of them when box is empty), the
// first of those the fewest edits from the truth.
func bestRead(reads []reader.Read, truth string, box image.Rectangle) int {
	best, bestD := -1, 0
	for i, rd := range reads {
		if !box.Empty() && !onPlate(rd.Quad, box) {
			continue
		}
		d := levenshtein.Distance(plate.ScoringKey(rd.Plate), plate.ScoringKey(truth))
		if best < 0 || d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// onPlate reports whether a read's quad overlaps the labelled plate box:
// at least half of the smaller of the two (the quad's bounding box or the
// plate box) lies inside the other. A line of the plate lies inside its
// box; a sticker or a sign that only touches the box does not count.
func onPlate(q ocr.Quad, box image.Rectangle) bool {
	x0, y0, x1, y1 := q[0].X, q[0].Y, q[0].X, q[0].Y
	for _, p := range q[1:] {
		x0, y0, x1, y1 = min(x0, p.X), min(y0, p.Y), max(x1, p.X), max(y1, p.Y)
	}
	bx0, by0, bx1, by1 := float64(box.Min.X), float64(box.Min.Y), float64(box.Max.X), float64(box.Max.Y)
	iw, ih := min(x1, bx1)-max(x0, bx0), min(y1, by1)-max(y0, by0)
	if iw <= 0 || ih <= 0 {
		return false
	}
	return iw*ih >= 0.5*min((x1-x0)*(y1-y0), (bx1-bx0)*(by1-by0))
}

// missCause says why a miss is one, from its best-matching read ("" for
// none).
func missCause(truth, best string, err error) string {
	switch {
	case err != nil:
		return causeError
	case best == "":
		return causeNoPlate
	}
	switch t, b := len(plate.Normalize(truth)), len(plate.Normalize(best)); {
	case b > t:
		return causeExtra
	case b < t:
		return causeMissing
	}
	return causeWrong
}

// missCount is how many misses have one cause, with a few of them.
type missCount struct {
	Cause    string        `json:"cause"`
	Count    int           `json:"count"`
	Examples []missExample `json:"examples"`
}

type missExample struct {
	Image string `json:"image"`
	Truth string `json:"truth"`
	Read  string `json:"read"` // the best-matching read; "" for none
}

// missesByCause counts the misses of each cause, in the order of causes,
// with the first missExamples of each.
func missesByCause(results []evalResult) []missCount {
	out := make([]missCount, len(causes))
	for i, c := range causes {
		out[i] = missCount{Cause: c, Examples: []missExample{}}
	}
	for _, r := range results {
		i := slices.Index(causes, r.Cause)
		if r.OK || i < 0 {
			continue
		}
		out[i].Count++
		if len(out[i].Examples) < missExamples {
			out[i].Examples = append(out[i].Examples, missExample{Image: r.Image, Truth: r.Truth, Read: r.Best})
		}
	}
	return out
}

// charErrors are the character errors of the best-matching reads against
// the truth, aligned with the fewest edits. Characters are compared by the
// scoring convention: a letter O counts as the digit 0.
type charErrors struct {
	Aligned int `json:"aligned"` // images with a best-matching read, those read included
	// Pairs are the truth -> read pairs that are not matches, most
	// frequent first; "-" is a character the read left out (as the read)
	// or added (as the truth).
	Pairs []charPair `json:"pairs"`
	Chars []charRate `json:"chars"` // every character of those truths, highest error rate first
}

type charPair struct {
	Truth string `json:"truth"`
	Read  string `json:"read"`
	Count int    `json:"count"`
}

type charRate struct {
	Char   string  `json:"char"`
	Seen   int     `json:"seen"`   // in the truths aligned
	Errors int     `json:"errors"` // read as another character or left out
	Rate   float64 `json:"rate"`
}

// characterErrors aligns each result's truth with its best-matching read
// and counts the pairs and each truth character's errors. Images without
// a best-matching read (no plate found) have no characters to count.
func characterErrors(results []evalResult) charErrors {
	ce := charErrors{Pairs: []charPair{}, Chars: []charRate{}}
	pairs := map[[2]byte]int{}
	seen, errs := map[byte]int{}, map[byte]int{}
	for _, r := range results {
		if r.Best == "" {
			continue
		}
		ce.Aligned++
		for _, op := range levenshtein.Align(plate.ScoringKey(r.Truth), plate.ScoringKey(r.Best)) {
			if op.Edit != levenshtein.Ins {
				seen[op.A]++
			}
			switch op.Edit {
			case levenshtein.Sub:
				pairs[[2]byte{op.A, op.B}]++
				errs[op.A]++
			case levenshtein.Del:
				pairs[[2]byte{op.A, '-'}]++
				errs[op.A]++
			case levenshtein.Ins:
				pairs[[2]byte{'-', op.B}]++
			}
		}
	}
	for p, n := range pairs {
		ce.Pairs = append(ce.Pairs, charPair{Truth: string(p[0]), Read: string(p[1]), Count: n})
	}
	slices.SortFunc(ce.Pairs, func(a, b charPair) int {
		return cmp.Or(b.Count-a.Count, strings.Compare(a.Truth, b.Truth), strings.Compare(a.Read, b.Read))
	})
	for c, n := range seen {
		ce.Chars = append(ce.Chars, charRate{Char: string(c), Seen: n, Errors: errs[c], Rate: float64(errs[c]) / float64(n)})
	}
	slices.SortFunc(ce.Chars, byRate)
	return ce
}

func byRate(a, b charRate) int {
	return cmp.Or(cmp.Compare(b.Rate, a.Rate), b.Seen-a.Seen, strings.Compare(a.Char, b.Char))
}

// disagreement counts the images where the runs' verdicts differ and
// those where their reads differ, and sets each run's ReadOthersMissed.
// The runs have the same images in the same order.
func disagreement(runs []evalSummary) (verdicts, reads int) {
	for i := range runs[0].Results {
		var ok, miss, differ bool
		for _, run := range runs {
			r := run.Results[i]
			ok, miss = ok || r.OK, miss || !r.OK
			differ = differ || !sameReads(runs[0].Results[i], r)
		}
		if ok && miss {
			verdicts++
			for k := range runs {
				if runs[k].Results[i].OK {
					runs[k].ReadOthersMissed++
				}
			}
		}
		if differ {
			reads++
		}
	}
	return verdicts, reads
}

// sameReads: a and b report the same plates, in any order, by the scoring
// convention.
func sameReads(a, b evalResult) bool {
	keys := func(r evalResult) []string {
		var k []string
		for _, p := range r.Reads {
			k = append(k, plate.ScoringKey(p))
		}
		slices.Sort(k)
		return k
	}
	return slices.Equal(keys(a), keys(b))
}

// printReport writes, after the summary lines, the misses by cause and
// the character errors, one column per run.
func printReport(w io.Writer, runs []evalSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	defer tw.Flush()
	header := func(title string, rows int) {
		fmt.Fprintf(tw, "\n%s\n", title)
		if len(runs) > 1 && rows > 0 {
			for _, r := range runs {
				fmt.Fprintf(tw, "\t%s", r.Setting)
			}
			fmt.Fprintln(tw)
		}
	}
	row := func(label string, cell func(r evalSummary) string) {
		fmt.Fprintf(tw, "  %s", label)
		for _, r := range runs {
			fmt.Fprintf(tw, "\t%s", cell(r))
		}
		fmt.Fprintln(tw)
	}

	header("misses by cause", 1)
	for i, c := range causes {
		if c == causeError && !slices.ContainsFunc(runs, func(r evalSummary) bool { return r.Misses[i].Count > 0 }) {
			continue
		}
		row(c, func(r evalSummary) string { return fmt.Sprint(r.Misses[i].Count) })
	}
	row("all", func(r evalSummary) string { return fmt.Sprint(r.Images - r.Exact) })
	tw.Flush()
	for _, r := range runs {
		if r.Exact == r.Images {
			continue
		}
		with := ""
		if r.Setting != "" {
			with = " with " + r.Setting
		}
		fmt.Fprintf(tw, "\nexamples%s (truth -> best-matching read)\n", with)
		for _, m := range r.Misses {
			for _, e := range m.Examples {
				fmt.Fprintf(tw, "  %s\t%s\t%s -> %s\n", m.Cause, e.Image, e.Truth, orDash(e.Read))
			}
		}
		tw.Flush()
	}

	pairs := topCharPairs(runs)
	header("character errors, truth -> read (- for a character missing or extra; O counts as 0)", 1)
	row("plates aligned", func(r evalSummary) string { return fmt.Sprint(r.Characters.Aligned) })
	for _, p := range pairs {
		row(p.Truth+" -> "+p.Read, func(r evalSummary) string {
			i := slices.IndexFunc(r.Characters.Pairs, func(q charPair) bool { return q.Truth == p.Truth && q.Read == p.Read })
			if i < 0 {
				return "0"
			}
			return fmt.Sprint(r.Characters.Pairs[i].Count)
		})
	}

	rates, clean := charRows(runs)
	header(fmt.Sprintf("error rate per character seen %d times or more", minSeen), len(rates))
	for _, c := range rates {
		row(c, func(r evalSummary) string {
			i := slices.IndexFunc(r.Characters.Chars, func(q charRate) bool { return q.Char == c })
			if i < 0 {
				return "-"
			}
			q := r.Characters.Chars[i]
			return fmt.Sprintf("%.1f%% %d/%d", 100*q.Rate, q.Errors, q.Seen)
		})
	}
	tw.Flush()
	switch {
	case len(clean) > 0:
		fmt.Fprintf(w, "  no errors: %s\n", strings.Join(clean, " "))
	case len(rates) == 0:
		fmt.Fprintln(w, "  none")
	}
}

// topCharPairs are the topPairs most frequent pairs of all runs together.
func topCharPairs(runs []evalSummary) []charPair {
	total := map[[2]string]int{}
	for _, r := range runs {
		for _, p := range r.Characters.Pairs {
			total[[2]string{p.Truth, p.Read}] += p.Count
		}
	}
	var ps []charPair
	for k, n := range total {
		ps = append(ps, charPair{Truth: k[0], Read: k[1], Count: n})
	}
	slices.SortFunc(ps, func(a, b charPair) int {
		return cmp.Or(b.Count-a.Count, strings.Compare(a.Truth, b.Truth), strings.Compare(a.Read, b.Read))
	})
	return ps[:min(len(ps), topPairs)]
}

// charRows are the characters seen minSeen times or more in some run:
// those with errors, highest rate (all runs together) first, and those
// without, in order.
func charRows(runs []evalSummary) (withErrors, clean []string) {
	total := map[string]*charRate{}
	often := map[string]bool{}
	for _, r := range runs {
		for _, c := range r.Characters.Chars {
			t := total[c.Char]
			if t == nil {
				t = &charRate{Char: c.Char}
				total[c.Char] = t
			}
			t.Seen += c.Seen
			t.Errors += c.Errors
			often[c.Char] = often[c.Char] || c.Seen >= minSeen
		}
	}
	var rates []charRate
	for c, t := range total {
		if !often[c] {
			continue
		}
		if t.Errors == 0 {
			clean = append(clean, c)
			continue
		}
		t.Rate = float64(t.Errors) / float64(t.Seen)
		rates = append(rates, *t)
	}
	slices.SortFunc(rates, byRate)
	for _, r := range rates {
		withErrors = append(withErrors, r.Char)
	}
	slices.Sort(clean)
	return withErrors, clean
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
