package reader

import (
	"math"
	"sort"

	"anprd/camera/ocr"
	"anprd/internal/plate"
)

// stackedPairs finds, among the quads at the indices rows, the rows of
// two-row plates: pairs of lines one above the other (see stacked), each
// line in one pair at most, the best overlapping first. A pair is top row
// then bottom row.
func stackedPairs(quads []ocr.Quad, rows []int) [][2]int {
	type cand struct {
		top, bottom int
		score       float64
	}
	var cs []cand
	for _, a := range rows {
		for _, b := range rows {
			if a != b {
				if s, ok := stacked(quads[a], quads[b]); ok {
					cs = append(cs, cand{a, b, s})
				}
			}
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].score > cs[j].score })
	used := map[int]bool{}
	var out [][2]int
	for _, c := range cs {
		if !used[c.top] && !used[c.bottom] {
			used[c.top], used[c.bottom] = true, true
			out = append(out, [2]int{c.top, c.bottom})
		}
	}
	return out
}

// box is a quad's extent along the frame's axes.
type box struct{ left, right, top, bottom, h float64 }

func extent(q ocr.Quad) box {
	return box{left: (q[0].X + q[3].X) / 2, right: (q[1].X + q[2].X) / 2,
		top: (q[0].Y + q[1].Y) / 2, bottom: (q[3].Y + q[2].Y) / 2, h: q.Height()}
}

// stacked reports whether b lies under a as the bottom row of a two-row
// plate whose top row is a: of similar height, close under it (the rows
// of a two-row plate are a fraction of a character apart; the detector's
// boxes may overlap a little), overlapping it, and of similar width or
// the narrower within the wider's span (AB12 over CDE; AB over 12345).
// The score is the overlap over the union of their widths.
func stacked(a, b ocr.Quad) (float64, bool) {
	ea, eb := extent(a), extent(b)
	if ea.h <= 0 || eb.h <= 0 || eb.h/ea.h < 0.6 || eb.h/ea.h > 1/0.6 {
		return 0, false
	}
	h := (ea.h + eb.h) / 2
	if gap := eb.top - ea.bottom; gap < -0.35*h || gap > 0.8*h {
		return 0, false
	}
	wa, wb := ea.right-ea.left, eb.right-eb.left
	overlap := math.Min(ea.right, eb.right) - math.Max(ea.left, eb.left)
	if wa <= 0 || wb <= 0 || overlap < 0.5*math.Min(wa, wb) {
		return 0, false
	}
	similar := math.Min(wa, wb)/math.Max(wa, wb) >= 0.7
	narrow, wide := ea, eb
	if wa > wb {
		narrow, wide = eb, ea
	}
	within := narrow.left >= wide.left-0.25*h && narrow.right <= wide.right+0.25*h
	if !similar && !within {
		return 0, false
	}
	return overlap / (math.Max(ea.right, eb.right) - math.Min(ea.left, eb.left)), true
}

// joinRows lays a two-row plate's rows out as one line, top row first:
// each row's characters keep their places in the row, in frame pixels,
// and the bottom row starts a gap of the rows' height after the top row's
// crop, so that each row stays a group of its own (a step of twice a
// character's height is well over plate.Groups' gap). The band's blue of
// each row moves with it.
func joinRows(top, bottom *row) ([]plate.Char, plate.Band, ocr.Quad) {
	gap := top.h + bottom.h
	total := top.w + gap + bottom.w
	start := (top.w + gap) / total // where the bottom row begins
	chars := make([]plate.Char, 0, len(top.chars)+len(bottom.chars))
	for _, c := range top.chars {
		c.X = c.X * float32(top.w/total)
		chars = append(chars, c)
	}
	for _, c := range bottom.chars {
		c.X = float32(start) + c.X*float32(bottom.w/total)
		chars = append(chars, c)
	}
	var band plate.Band
	for _, s := range top.band.Spans {
		band.Spans = append(band.Spans, plate.Span{From: s.From * float32(top.w/total), To: s.To * float32(top.w/total)})
	}
	for _, s := range bottom.band.Spans {
		// Its blue left of the bottom row's crop reaches into the gap, not
		// into the top row.
		from := max(float32(start)+s.From*float32(bottom.w/total), float32((top.w+gap/2)/total))
		band.Spans = append(band.Spans, plate.Span{From: from, To: float32(start) + s.To*float32(bottom.w/total)})
	}
	q := ocr.Quad{top.q[0], top.q[1], bottom.q[2], bottom.q[3]}
	return chars, band, q
}
