package plate

import "slices"

// gapFactor: a step from one character to the next this many times the
// line's usual pitch (the median step) or more is a gap between groups.
// Within a group the steps vary by about a recogniser step (a quarter of
// a character); the printed gap between groups adds half a character
// width or more, and a dash or a sticker more still.
const gapFactor = 1.5

// groupAltMin: the recogniser must give the other class's character at
// least this probability for a group to change it (the layout breaks the
// recogniser's tie; it does not overrule a confident read).
const groupAltMin = 0.1

// Groups returns, for each character, the index of its group: a run of
// characters without a gap (see gapFactor). A line of fewer than three
// characters, or whose characters carry no positions, is one group.
func Groups(line []Char) []int {
	g := make([]int, len(line))
	if len(line) < 3 {
		return g
	}
	steps := make([]float32, len(line)-1)
	for i := 1; i < len(line); i++ {
		steps[i-1] = line[i].X - line[i-1].X
	}
	sorted := slices.Clone(steps)
	slices.Sort(sorted)
	pitch := sorted[(len(sorted)-1)/2] // the lower median: with two groups, a step inside one
	if pitch <= 0 {
		return g
	}
	for i, s := range steps {
		g[i+1] = g[i]
		if s >= gapFactor*pitch {
			g[i+1]++
		}
	}
	return g
}

// groupFixes makes each group of the generic format one class: in a
// group whose other characters are all letters, a confusable digit
// becomes its letter, and in a group of digits a confusable letter its
// digit, but only where the recogniser thought of the other one as its
// runner-up (groupAltMin). A group of two that could go either way is
// left as read. It returns the text and how many characters it
// changed.
func groupFixes(chars []Char) ([]byte, int) {
	out := make([]byte, len(chars))
	for i, c := range chars {
		out[i] = c.R
	}
	groups := Groups(chars)
	fixes := 0
	for start := 0; start < len(chars); {
		end := start + 1
		for end < len(chars) && groups[end] == groups[start] {
			end++
		}
		if end-start >= 2 {
			var at []int
			var to []byte
			for i := start; i < end; i++ {
				if m, ok := groupClassFix(chars[start:end], i-start); ok {
					at, to = append(at, i), append(to, m)
				}
			}
			if len(at) == 1 { // two at once would each undo the other's reason
				out[at[0]] = to[0]
				fixes++
			}
		}
		start = end
	}
	return out, fixes
}

// groupClassFix: the fix of character i of group g, if the group's other
// characters are all of the other class and the fix is credible.
func groupClassFix(g []Char, i int) (byte, bool) {
	letters, digits := 0, 0
	for k, c := range g {
		if k == i {
			continue
		}
		if isLetter(c.R) {
			letters++
		} else {
			digits++
		}
	}
	c := g[i]
	var m byte
	switch {
	case digits == 0 && !isLetter(c.R):
		m = toLetter[c.R]
	case letters == 0 && isLetter(c.R):
		m = toDigit[c.R]
	}
	// Without a layout, only the recogniser's own runner-up may change a
	// character: groups of mixed letters and digits are common (US
	// serials, personalised plates), so a doubt alone is no reason.
	if m == 0 || c.Alt != m || c.AltConf < groupAltMin {
		return 0, false
	}
	return m, true
}

func isLetter(r byte) bool { return r >= 'A' && r <= 'Z' }
