package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anprd/camera/ocr/ocrtest"
	"anprd/camera/plategen"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

// readerArgs points the reader at what `make deps` fetched.
func readerArgs(t *testing.T) []string {
	lib, models := ocrtest.Deps(t)
	return []string{"-onnxruntime", lib, "-models", models}
}

var fixturePlates = []struct {
	text    string
	country plate.Country
}{{"AB12345", "NO"}, {"ABC123", "SE"}, {"EK98765", "NO"}, {"XYZ98A", "SE"}}

// writeFixtures renders a labelled folder of each format of
// shared/data/README.md.
func writeFixtures(t *testing.T) (crops, scenes string) {
	crops, scenes = t.TempDir(), t.TempDir()
	var tsv strings.Builder
	tsv.WriteString("# image\tplate\n")
	for i, fp := range fixturePlates {
		p := plategen.Plate(fp.text, fp.country, 90)
		name := fmt.Sprintf("crop%d.png", i)
		gocv.IMWrite(filepath.Join(crops, name), p)
		fmt.Fprintf(&tsv, "%s\t%s\n", name, fp.text)
		f, c := plategen.Render(p, plategen.Scene{Width: 1280, Height: 720, Center: image.Pt(500+50*i, 400), PlateWidth: 190, Yaw: 10, Noise: 4, Seed: uint64(i)})
		name = fmt.Sprintf("scene%d.jpg", i)
		gocv.IMWrite(filepath.Join(scenes, name), f)
		os.WriteFile(filepath.Join(scenes, fmt.Sprintf("scene%d.txt", i)),
			fmt.Appendf(nil, "%s\t%d\t%d\t%d\t%d\t%s\n", name, c[0].X, c[0].Y, c[1].X-c[0].X, c[3].Y-c[0].Y, fp.text), 0o644)
		p.Close()
		f.Close()
	}
	os.WriteFile(filepath.Join(crops, "labels.tsv"), []byte(tsv.String()), 0o644)
	os.WriteFile(filepath.Join(scenes, "notes.txt"), []byte("not a label\n"), 0o644)
	return crops, scenes
}

func TestEvalBothFormats(t *testing.T) {
	args := readerArgs(t)
	crops, scenes := writeFixtures(t)
	for _, dir := range []string{crops, scenes} {
		var out, errb bytes.Buffer
		if code := run(append(append([]string{"eval"}, args...), "-json", dir), &out, &errb); code != 0 {
			t.Fatalf("eval %s: exit %d: %s", dir, code, errb.String())
		}
		var sum evalSummary
		if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
			t.Fatalf("eval -json: %v: %s", err, out.String())
		}
		if sum.Images != len(fixturePlates) || sum.Exact != sum.Images || sum.Accuracy != 1 || sum.P50MS <= 0 || sum.P95MS < sum.P50MS {
			t.Errorf("%s: summary %+v", dir, sum)
		}
		out.Reset()
		run(append(append([]string{"eval"}, args...), dir), &out, &errb)
		if !strings.Contains(out.String(), "images 4  exact 4  accuracy 100.0%") || strings.Count(out.String(), "\nok ") != 3 {
			t.Errorf("eval text output:\n%s", out.String())
		}
	}
}

func TestEvalScoresMisses(t *testing.T) {
	args := readerArgs(t)
	crops, _ := writeFixtures(t)
	// Wrong truth for one image: it must count as a miss.
	b, _ := os.ReadFile(filepath.Join(crops, "labels.tsv"))
	os.WriteFile(filepath.Join(crops, "labels.tsv"), bytes.Replace(b, []byte("AB12345"), []byte("AB12346"), 1), 0o644)
	var out, errb bytes.Buffer
	run(append(append([]string{"eval"}, args...), "-json", crops), &out, &errb)
	var sum evalSummary
	json.Unmarshal(out.Bytes(), &sum)
	if sum.Exact != 3 || sum.Accuracy != 0.75 {
		t.Errorf("summary %+v", sum)
	}
}

func TestRead(t *testing.T) {
	args := readerArgs(t)
	_, scenes := writeFixtures(t)
	var out, errb bytes.Buffer
	files := []string{filepath.Join(scenes, "scene0.jpg"), filepath.Join(scenes, "scene1.jpg"), filepath.Join(scenes, "missing.jpg")}
	code := run(append(append([]string{"read"}, args...), files...), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "missing.jpg: cannot decode image") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "\tAB12345\t") || !strings.Contains(lines[0], "\tNO\t") || !strings.Contains(lines[1], "\tABC123\t") {
		t.Errorf("read output:\n%s", out.String())
	}
}

func TestLoadLabelsErrors(t *testing.T) {
	d := t.TempDir()
	if _, _, err := loadLabels(d); err == nil {
		t.Error("empty folder accepted")
	}
	os.WriteFile(filepath.Join(d, "labels.tsv"), []byte("a.jpg ABC123\n"), 0o644)
	if _, _, err := loadLabels(d); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("malformed labels.tsv: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 6, 7, 8, 9}
	if p := percentile(xs, 50); p != 5 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(xs, 95); p != 10 {
		t.Errorf("p95 = %v", p)
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}

// TestEvalMissCauses gives the rendered scenes labels that the reader's
// correct reads miss in each way, and a blank scene.
func TestEvalMissCauses(t *testing.T) {
	args := readerArgs(t)
	_, scenes := writeFixtures(t)
	relabel := func(name string, edit func(f []string)) {
		p := filepath.Join(scenes, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Split(strings.TrimSpace(string(b)), "\t")
		edit(f)
		os.WriteFile(p, []byte(strings.Join(f, "\t")+"\n"), 0o644)
	}
	relabel("scene0.txt", func(f []string) { f[5] = "AB12346" })  // read AB12345
	relabel("scene1.txt", func(f []string) { f[5] = "ABC12" })    // read ABC123
	relabel("scene2.txt", func(f []string) { f[5] = "EK987650" }) // read EK98765
	// Read XYZ98A, elsewhere than the labelled box: without the box it
	// would be wrong characters.
	relabel("scene3.txt", func(f []string) { f[1], f[2], f[5] = "20", "20", "XYZ98B" })
	blank := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(128, 128, 128, 0), 720, 1280, gocv.MatTypeCV8UC3)
	gocv.IMWrite(filepath.Join(scenes, "scene4.jpg"), blank)
	blank.Close()
	os.WriteFile(filepath.Join(scenes, "scene4.txt"), []byte("scene4.jpg\t500\t400\t190\t40\tAB12345\n"), 0o644)

	var out, errb bytes.Buffer
	if code := run(append(append([]string{"eval"}, args...), "-json", scenes), &out, &errb); code != 0 {
		t.Fatalf("eval: exit %d: %s", code, errb.String())
	}
	var sum evalSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("eval -json: %v: %s", err, out.String())
	}
	want := map[string]struct{ cause, best string }{
		"scene0.jpg": {causeWrong, "AB12345"},
		"scene1.jpg": {causeExtra, "ABC123"},
		"scene2.jpg": {causeMissing, "EK98765"},
		"scene3.jpg": {causeNoPlate, ""},
		"scene4.jpg": {causeNoPlate, ""},
	}
	for _, r := range sum.Results {
		if w := want[r.Image]; r.OK || r.Cause != w.cause || r.Best != w.best {
			t.Errorf("%s: ok %v cause %q best %q, want cause %q best %q (reads %q)", r.Image, r.OK, r.Cause, r.Best, w.cause, w.best, r.Reads)
		}
	}
	if len(sum.Results) != 5 || sum.Exact != 0 {
		t.Errorf("summary %+v", sum)
	}
	counts := map[string]int{}
	for _, m := range sum.Misses {
		counts[m.Cause] = m.Count
	}
	if counts[causeNoPlate] != 2 || counts[causeWrong] != 1 || counts[causeExtra] != 1 || counts[causeMissing] != 1 || counts[causeError] != 0 {
		t.Errorf("misses %+v", sum.Misses)
	}
	wantPairs := []charPair{{"-", "3", 1}, {"0", "-", 1}, {"6", "5", 1}}
	if c := sum.Characters; c.Aligned != 3 || fmt.Sprint(c.Pairs) != fmt.Sprint(wantPairs) {
		t.Errorf("characters: %d aligned, pairs %v, want 3 and %v", c.Aligned, c.Pairs, wantPairs)
	}

	out.Reset()
	run(append(append([]string{"eval"}, args...), scenes), &out, &errb)
	text := out.String()
	if !strings.HasPrefix(text, "MISS scene0.jpg ") {
		t.Errorf("the first line is not scene0's miss:\n%s", text)
	}
	for _, s := range []string{
		"\nimages 5  exact 0  accuracy 0.0%  ms/image p50 ",
		" AB12346 ", " ms  AB12345  [wrong characters]\n",
		" ms    [no plate found]\n",
		"\nmisses by cause\n", "  no plate found       2\n", "  wrong characters     1\n",
		"  6 -> 5           1\n", "  - -> 3           1\n",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("eval output lacks %q:\n%s", s, text)
		}
	}
}

// TestEvalCompare runs two settings of one reader flag: with a minimum
// confidence above 1 the reader reports nothing.
func TestEvalCompare(t *testing.T) {
	args := readerArgs(t)
	crops, _ := writeFixtures(t)
	var out, errb bytes.Buffer
	if code := run(append(append([]string{"eval"}, args...), "-json", "-compare", "min-conf=0.5|1.01", crops), &out, &errb); code != 0 {
		t.Fatalf("eval: exit %d: %s", code, errb.String())
	}
	var c evalComparison
	if err := json.Unmarshal(out.Bytes(), &c); err != nil {
		t.Fatalf("eval -json: %v: %s", err, out.String())
	}
	if c.Flag != "min-conf" || len(c.Runs) != 2 || c.VerdictsDiffer != 4 || c.ReadsDiffer != 4 {
		t.Fatalf("comparison %+v", c)
	}
	if r := c.Runs[0]; r.Setting != "min-conf=0.5" || r.Exact != 4 || r.ReadOthersMissed != 4 {
		t.Errorf("first run %+v", r)
	}
	if r := c.Runs[1]; r.Setting != "min-conf=1.01" || r.Exact != 0 || r.Misses[0].Count != 4 || r.ReadOthersMissed != 0 {
		t.Errorf("second run %+v", r)
	}

	out.Reset()
	run(append(append([]string{"eval"}, args...), "-compare", "min-conf=0.5|1.01", crops), &out, &errb)
	text := out.String()
	for _, s := range []string{
		"\nimages 4  exact 4  accuracy 100.0%  ms/image p50 ", "  min-conf=0.5\n",
		"\nimages 4  exact 0  accuracy 0.0%  ms/image p50 ", "  min-conf=1.01\n",
		"\nmin-conf: verdicts differ on 4 of 4 images, reads on 4\n",
		"\n  MISS min-conf=1.01 ", "\nok   crop1.png ",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("eval -compare output lacks %q:\n%s", s, text)
		}
	}
	if n := strings.Count(text, "\n  MISS min-conf=1.01 "); n != 4 {
		t.Errorf("%d lines of the second setting, want 4:\n%s", n, text)
	}

	errb.Reset()
	if code := run(append(append([]string{"eval"}, args...), "-compare", "json=true|false", crops), &out, &errb); code != 2 || !strings.Contains(errb.String(), "for a reader flag") {
		t.Errorf("-compare of a flag that is not the reader's: exit %d, %s", code, errb.String())
	}
}

// TestUnknownCountry: a country the plate layer does not know is refused
// before anything is read, rather than silently tried with no formats.
func TestUnknownCountry(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"read", "-countries", "NO,XX", "image.jpg"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "-countries: XX is not a country") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
