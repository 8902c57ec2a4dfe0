package ocr

import (
	"math"
	"testing"
)

// plateRow is one output step of the plate recogniser over classes blank,
// A, B, C, 1: mass on the given classes, the rest on the blank.
func plateRow(m map[int]float32) []float32 {
	row := make([]float32, 5)
	rest := float32(1)
	for k, p := range m {
		row[k] = p
		rest -= p
	}
	row[0] += rest
	return row
}

func testPlateRec(steps int) *plateRec {
	return &plateRec{chars: []string{"", "A", "B", "C", "1"}, steps: steps}
}

func TestPlateDecodeCTC(t *testing.T) {
	rows := [][]float32{
		plateRow(map[int]float32{1: 0.9}),          // A
		plateRow(map[int]float32{1: 0.95}),         // A again: one A, 0.95
		plateRow(nil),                              // blank
		plateRow(map[int]float32{1: 0.6, 2: 0.3}),  // a second A, B runner-up
		plateRow(map[int]float32{4: 0.55, 3: 0.1}), // 1
		plateRow(nil),
		plateRow(nil),
		plateRow(nil), // padding: not read
	}
	var probs []float32
	for _, r := range rows {
		probs = append(probs, r...)
	}
	p := testPlateRec(len(rows))
	l := p.decodeCTC(probs, 5)
	if got := l.Text(); got != "AA1" {
		t.Fatalf("text %q, want AA1", got)
	}
	c := l.Chars
	if c[0].Conf != 0.95 || c[1].Alt != "B" || math.Abs(float64(c[1].AltConf)-0.3) > 1e-6 || c[2].Alt != "C" {
		t.Errorf("chars %+v", c)
	}
	// Positions along the used part of the input: step 1 of 5 is 0.3.
	if math.Abs(float64(c[0].X)-0.1) > 1e-6 || math.Abs(float64(c[2].X)-0.9) > 1e-6 {
		t.Errorf("positions %v %v", c[0].X, c[2].X)
	}
	// The runner-up is the likeliest other character, never the blank.
	l = testPlateRec(1).decodeCTC(plateRow(map[int]float32{3: 0.8, 2: 0.05, 4: 0.01}), 1)
	if len(l.Chars) != 1 || l.Chars[0].Alt != "B" {
		t.Errorf("runner-up: %+v", l.Chars)
	}
}

func TestPlateDecodeSlots(t *testing.T) {
	rows := [][]float32{
		plateRow(map[int]float32{2: 0.9}),
		plateRow(nil), // an empty slot between is skipped
		plateRow(map[int]float32{3: 0.7, 4: 0.2}),
		plateRow(nil),
	}
	var probs []float32
	for _, r := range rows {
		probs = append(probs, r...)
	}
	l := testPlateRec(len(rows)).decodeSlots(probs)
	if l.Text() != "BC" || l.Chars[1].Alt != "1" || l.Chars[0].X != 0.25 || l.Chars[1].X != 0.75 {
		t.Errorf("slots %+v", l.Chars)
	}
}
