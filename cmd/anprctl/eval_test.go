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

// TestUnknownCountry: a country the plate layer does not know is refused
// before anything is read, rather than silently tried with no formats.
func TestUnknownCountry(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"read", "-countries", "NO,XX", "image.jpg"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "-countries: XX is not a country") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
