// Package levenshtein measures how many single-character edits turn one
// string into another: how far a misspelt config key is from a real one,
// how far one frame's plate read is from another's. Align says which
// edits: which characters a reader got wrong, left out or added. Bytes,
// not runes: the callers compare ASCII.
package levenshtein

// Distance is the Levenshtein distance between a and b.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Edit is what one step of an alignment does.
type Edit uint8

const (
	Match Edit = iota // A == B
	Sub               // A became B
	Del               // A is not in b (B is 0)
	Ins               // B is not in a (A is 0)
)

// Op is one step of an alignment of a with b.
type Op struct {
	Edit Edit
	A, B byte
}

// Align returns an alignment of a with b that makes Distance(a, b) edits,
// from the strings' starts: each character of a and of b is in exactly one
// step. Of the alignments that short, it takes, walking back from the
// ends, a match or substitution before a deletion before an insertion, so
// the result does not depend on anything but a and b.
func Align(a, b string) []Op {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
		}
	}
	ops := make([]Op, 0, max(len(a), len(b)))
	for i, j := len(a), len(b); i > 0 || j > 0; {
		switch {
		case i > 0 && j > 0 && a[i-1] == b[j-1] && d[i][j] == d[i-1][j-1]:
			ops = append(ops, Op{Match, a[i-1], b[j-1]})
			i, j = i-1, j-1
		case i > 0 && j > 0 && d[i][j] == d[i-1][j-1]+1:
			ops = append(ops, Op{Sub, a[i-1], b[j-1]})
			i, j = i-1, j-1
		case i > 0 && d[i][j] == d[i-1][j]+1:
			ops = append(ops, Op{Del, a[i-1], 0})
			i--
		default:
			ops = append(ops, Op{Ins, 0, b[j-1]})
			j--
		}
	}
	for l, r := 0, len(ops)-1; l < r; l, r = l+1, r-1 {
		ops[l], ops[r] = ops[r], ops[l]
	}
	return ops
}
