package main

import (
	"bytes"
	"errors"
	"flag"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"anprd/camera/ocr"
	"anprd/camera/reader"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// quad is the axis-aligned quad of a rectangle.
func quad(x0, y0, x1, y1 float64) ocr.Quad {
	return ocr.Quad{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
}

func TestOnPlate(t *testing.T) {
	box := image.Rect(100, 100, 200, 150)
	for _, c := range []struct {
		name string
		q    ocr.Quad
		want bool
	}{
		{"the plate's line, inside the box", quad(110, 110, 190, 140), true},
		{"the box itself", quad(100, 100, 200, 150), true},
		{"a line over the plate and beyond it", quad(50, 95, 300, 160), true},
		{"half of the line on the plate", quad(150, 110, 250, 140), true},
		{"a sticker touching the box's edge", quad(90, 145, 190, 170), false},
		{"a sign elsewhere", quad(400, 100, 500, 150), false},
		{"sharing an edge only", quad(200, 100, 300, 150), false},
		{"a skewed quad on the plate", ocr.Quad{{X: 105, Y: 115}, {X: 195, Y: 105}, {X: 196, Y: 135}, {X: 106, Y: 145}}, true},
	} {
		if got := onPlate(c.q, box); got != c.want {
			t.Errorf("%s: onPlate = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestScore(t *testing.T) {
	box := image.Rect(100, 100, 200, 150)
	on, off := quad(110, 110, 190, 140), quad(400, 100, 500, 150)
	read := func(p string, q ocr.Quad) reader.Read { return reader.Read{Plate: p, Quad: q} }
	for _, c := range []struct {
		name       string
		box        image.Rectangle
		truth      string
		reads      []reader.Read
		err        error
		ok         bool
		best, want string
	}{
		{"read", box, "ABC123", []reader.Read{read("XY99", off), read("ABC123", on)}, nil, true, "ABC123", ""},
		{"read with O for 0, truth written as the label has it", box, "abo-123", []reader.Read{read("AB0123", on)}, nil, true, "AB0123", ""},
		{"no read", box, "ABC123", nil, nil, false, "", causeNoPlate},
		{"reads, none on the plate", box, "ABC123", []reader.Read{read("ABC128", off)}, nil, false, "", causeNoPlate},
		{"the read on the plate, not the closer one elsewhere", box, "ABC123", []reader.Read{read("ABC128", off), read("A8C12", on)}, nil, false, "A8C12", causeMissing},
		{"of the reads on the plate, the fewest edits", box, "ABC123", []reader.Read{read("XYZ789", on), read("ABC1234", on)}, nil, false, "ABC1234", causeExtra},
		{"a tie: the reader's first", box, "ABC123", []reader.Read{read("ABC128", on), read("ABC129", on)}, nil, false, "ABC128", causeWrong},
		{"a crop: every read counts", image.Rectangle{}, "ABC123", []reader.Read{read("A8C123", off)}, nil, false, "A8C123", causeWrong},
		{"O and 0 the same in the distance", image.Rectangle{}, "AB0123", []reader.Read{read("XY0123", on), read("ABO12", on)}, nil, false, "ABO12", causeMissing},
		{"a read error", box, "ABC123", nil, errors.New("boom"), false, "", causeError},
	} {
		r := score(sample{Image: "/d/x.jpg", Plate: c.truth, Box: c.box}, c.reads, 1500*time.Microsecond, c.err)
		if r.OK != c.ok || r.Best != c.best || r.Cause != c.want || r.Image != "x.jpg" || r.MS != 1.5 {
			t.Errorf("%s: got ok %v best %q cause %q (%+v), want ok %v best %q cause %q", c.name, r.OK, r.Best, r.Cause, r, c.ok, c.best, c.want)
		}
		if len(r.Reads) != len(c.reads) || (c.err != nil) != (r.Error != "") {
			t.Errorf("%s: reads %q error %q", c.name, r.Reads, r.Error)
		}
	}
}

// results are the outcomes of a small scene set, scored from made-up
// reads.
func results(t *testing.T) []evalResult {
	t.Helper()
	box := image.Rect(100, 100, 200, 150)
	on, off := quad(110, 110, 190, 140), quad(400, 100, 500, 150)
	var out []evalResult
	for i, c := range []struct {
		truth string
		reads []string
		where ocr.Quad
	}{
		{"ABC123", []string{"ABC123"}, on},
		{"ABO123", []string{"AB0123"}, on},  // read: O is 0
		{"IBC123", []string{"1BC123"}, on},  // wrong: I->1
		{"IBC128", []string{"1BC12B"}, on},  // wrong: I->1, 8->B
		{"IXY888", []string{"1XY88B"}, on},  // wrong: I->1, 8->B
		{"ABC123", []string{"ABC1234"}, on}, // extra: -->4
		{"AB1234", []string{"B1234"}, on},   // missing: A->-
		{"XYZ789", []string{"XYZ788"}, off}, // no plate found: only elsewhere
		{"XYZ780", nil, on},                 // no plate found: no read
		{"B88888", []string{"B88888"}, on},
	} {
		var reads []reader.Read
		for _, p := range c.reads {
			reads = append(reads, reader.Read{Plate: p, Quad: c.where})
		}
		out = append(out, score(sample{Image: "img" + string(rune('a'+i)) + ".jpg", Plate: c.truth, Box: box}, reads, time.Millisecond, nil))
	}
	return out
}

func TestMissesByCause(t *testing.T) {
	rs := results(t)
	got := map[string]int{}
	for _, m := range missesByCause(rs) {
		got[m.Cause] = m.Count
		if len(m.Examples) != min(m.Count, missExamples) {
			t.Errorf("%s: %d examples of %d", m.Cause, len(m.Examples), m.Count)
		}
	}
	want := map[string]int{causeNoPlate: 2, causeWrong: 3, causeExtra: 1, causeMissing: 1, causeError: 0}
	if !mapsEqual(got, want) {
		t.Errorf("misses by cause %v, want %v", got, want)
	}
	ms := missesByCause(rs)
	if e := ms[0].Examples; len(e) != 2 || e[0] != (missExample{Image: "imgh.jpg", Truth: "XYZ789", Read: ""}) {
		t.Errorf("no plate found: first example %+v", e[0])
	}
	if e := ms[1].Examples; len(e) != 3 || e[1] != (missExample{Image: "imgd.jpg", Truth: "IBC128", Read: "1BC12B"}) {
		t.Errorf("wrong characters: examples %+v", e)
	}
	// A cap on examples.
	many := slices.Repeat(rs[2:3], 5)
	if m := missesByCause(many)[1]; m.Count != 5 || len(m.Examples) != missExamples {
		t.Errorf("5 of one cause: %+v", m)
	}
}

func mapsEqual(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func TestCharacterErrors(t *testing.T) {
	ce := characterErrors(results(t))
	if ce.Aligned != 8 {
		t.Errorf("aligned %d, want 8 (the images with a best-matching read)", ce.Aligned)
	}
	want := []charPair{{"I", "1", 3}, {"8", "B", 2}, {"-", "4", 1}, {"A", "-", 1}}
	if !slices.Equal(ce.Pairs, want) {
		t.Errorf("pairs %v, want %v", ce.Pairs, want)
	}
	rate := map[string]charRate{}
	for _, c := range ce.Chars {
		rate[c.Char] = c
	}
	// I: 3 seen, 3 errors; 8: in IBC128, IXY888 and B88888 (9 seen:
	// XYZ789 has no read on the plate), 2 errors; A: in ABC123 (twice),
	// ABO123 and AB1234, one left out; 0 counts the O of ABO123.
	for _, w := range []charRate{{"I", 3, 3, 1}, {"8", 9, 2, 2.0 / 9}, {"A", 4, 1, 0.25}, {"0", 1, 0, 0}, {"C", 4, 0, 0}} {
		if rate[w.Char] != w {
			t.Errorf("%s: %+v, want %+v", w.Char, rate[w.Char], w)
		}
	}
	if _, ok := rate["O"]; ok {
		t.Error("O counted apart from 0")
	}
	if ce.Chars[0].Char != "I" || ce.Chars[1].Char != "A" || ce.Chars[2].Char != "8" {
		t.Errorf("not highest rate first: %v", ce.Chars)
	}
	if e := characterErrors(nil); e.Pairs == nil || e.Chars == nil {
		t.Error("no results: nil lists (null in JSON)")
	}
}

// summary is what runEval makes of results.
func summary(setting string, rs []evalResult) evalSummary {
	s := evalSummary{Dir: "d", Setting: setting, Images: len(rs), Results: rs}
	for _, r := range rs {
		if r.OK {
			s.Exact++
		}
	}
	s.Misses, s.Characters = missesByCause(rs), characterErrors(rs)
	return s
}

func TestDisagreement(t *testing.T) {
	a := results(t)
	b := slices.Clone(a)
	b[0] = score(sample{Image: "imga.jpg", Plate: "ABC123"}, nil, 0, nil)                                                // now missed
	b[2] = score(sample{Image: "imgc.jpg", Plate: "IBC123"}, []reader.Read{{Plate: "IBC123"}}, 0, nil)                   // now read
	b[3] = score(sample{Image: "imgd.jpg", Plate: "IBC128"}, []reader.Read{{Plate: "IBC12B"}}, 0, nil)                   // another miss
	b[9] = score(sample{Image: "imgj.jpg", Plate: "B88888"}, []reader.Read{{Plate: "B88888"}, {Plate: "B8888"}}, 0, nil) // read, more reads
	runs := []evalSummary{summary("countries=NO", a), summary("countries=", b)}
	v, r := disagreement(runs)
	if v != 2 || r != 4 || runs[0].ReadOthersMissed != 1 || runs[1].ReadOthersMissed != 1 {
		t.Errorf("verdicts differ %d, reads %d, read where another missed %d and %d", v, r, runs[0].ReadOthersMissed, runs[1].ReadOthersMissed)
	}
	if !sameReads(evalResult{Reads: []string{"AB0", "CD1"}}, evalResult{Reads: []string{"CD1", "ABO"}}) {
		t.Error("the same reads in another order, O for 0, differ")
	}
}

func TestPrintReport(t *testing.T) {
	a := results(t)
	b := slices.Clone(a)
	b[2] = score(sample{Image: "imgc.jpg", Plate: "IBC123"}, []reader.Read{{Plate: "IBC123"}}, 0, nil)
	b[4] = score(sample{Image: "imge.jpg", Plate: "IXY888"}, nil, 0, errors.New("cannot decode image"))
	for _, c := range []struct {
		golden string
		runs   []evalSummary
	}{
		{"report.golden", []evalSummary{summary("", a)}},
		{"report-compare.golden", []evalSummary{summary("countries=NO,SE", a), summary("countries=", b)}},
	} {
		var out bytes.Buffer
		printReport(&out, c.runs)
		golden := filepath.Join("testdata", c.golden)
		if *update {
			os.MkdirAll("testdata", 0o755)
			os.WriteFile(golden, out.Bytes(), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (go test -run TestPrintReport -update writes it)", err)
		}
		if out.String() != string(want) {
			t.Errorf("%s differs:\n%s", golden, out.String())
		}
	}
}

func TestSettings(t *testing.T) {
	for _, c := range []struct {
		args    []string
		compare string
		labels  []string
		check   func(i int, rf readerFlags) bool
		err     string
	}{
		{args: []string{"-countries", "SE"}, labels: []string{""},
			check: func(_ int, rf readerFlags) bool { return rf.countries == "SE" }},
		{args: []string{"-min-conf", "0.7"}, compare: "countries=NO,SE|", labels: []string{"countries=NO,SE", "countries="},
			check: func(i int, rf readerFlags) bool {
				return rf.countries == []string{"NO,SE", ""}[i] && rf.minConf == 0.7
			}},
		{compare: "threads=1|2|4", labels: []string{"threads=1", "threads=2", "threads=4"},
			check: func(i int, rf readerFlags) bool { return rf.threads == 1<<i && rf.countries == "NO,SE,DK,FI,DE,PL" }},
		{compare: "json=true|false", err: "for a reader flag: countries, det-side, min-conf,"},
		{compare: "countries", err: "want FLAG=VALUE|VALUE"},
		{compare: "countries=SE", err: "two values or more"},
		{compare: "threads=1|x", err: "-compare threads=x: parse error"},
		{args: []string{"-countries", "SE"}, compare: "countries=NO|SE", err: "-compare countries and -countries"},
	} {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		var rf readerFlags
		rf.register(fs)
		fs.Bool("json", false, "")
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		sets, err := settings(fs, &rf, c.compare)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("-compare %q: error %v, want %q", c.compare, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("-compare %q: %v", c.compare, err)
			continue
		}
		var labels []string
		for i, s := range sets {
			labels = append(labels, s.label)
			if !c.check(i, s.rf) {
				t.Errorf("-compare %q: setting %d is %+v", c.compare, i, s.rf)
			}
		}
		if !slices.Equal(labels, c.labels) {
			t.Errorf("-compare %q: labels %q, want %q", c.compare, labels, c.labels)
		}
	}
}

func TestParseSceneLabel(t *testing.T) {
	for _, c := range []struct {
		text string
		want sample
		ok   bool
	}{
		{"a.jpg\t935\t362\t99\t49\tYG9X2G\n", sample{Image: "a.jpg", Plate: "YG9X2G", Box: image.Rect(935, 362, 1034, 411)}, true},
		{"a.jpg 10 20 30 40 ABC 123\nmore\n", sample{Image: "a.jpg", Plate: "ABC 123", Box: image.Rect(10, 20, 40, 60)}, true},
		{"not a label\n", sample{}, false},
		{"This folder holds the images of the set\n", sample{}, false},
		{"", sample{}, false},
		{"\t1\t2\t3\t4\tABC123", sample{}, false},
		{"a.jpg\t1\t2\t3\t4\t ", sample{}, false},
	} {
		s, ok := parseSceneLabel(c.text)
		if ok != c.ok || s != c.want {
			t.Errorf("parseSceneLabel(%q) = %+v, %v; want %+v, %v", c.text, s, ok, c.want, c.ok)
		}
	}
}

func FuzzParseSceneLabel(f *testing.F) {
	f.Add("a.jpg\t935\t362\t99\t49\tYG9X2G\n")
	f.Add("a.jpg 1 2 3 4 ABC 123")
	f.Add("readme text of six words here")
	f.Fuzz(func(t *testing.T, text string) {
		s, ok := parseSceneLabel(text)
		if ok && (s.Image == "" || s.Plate == "" || s.Image != strings.TrimSpace(s.Image)) {
			t.Errorf("parseSceneLabel(%q) = %+v", text, s)
		}
	})
}
