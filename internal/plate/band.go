package plate

// Band is the pixels' evidence of the blue EU band on a line: the
// stretches of the line, in Char.X units, that lie on the band's blue
// (the reader measures them; a line joined from a plate's two rows may
// have one per row). The zero Band is no evidence, and then no character
// is ever dropped as the band.
type Band struct {
	Spans []Span
}

// Span is a stretch of a line from From to To, in Char.X units; From may
// be below 0 where the blue starts left of the line's crop.
type Span struct{ From, To float32 }

// maxBandChars: the band holds its country's code, three letters at most
// (EST, FIN, SLO). More characters on one stretch of blue mean the blue
// is not a band (a blue plate, a blue sign), and nothing is dropped.
const maxBandChars = 3

// Seen reports whether the pixels show a band.
func (b Band) Seen() bool { return len(b.Spans) > 0 }

// inBand returns, for each character, whether it lies on the band's blue,
// and how many do; none when the evidence does not hold together.
func (b Band) inBand(line []Char) ([]bool, int) {
	if len(b.Spans) == 0 {
		return nil, 0
	}
	in := make([]bool, len(line))
	total := 0
	for _, s := range b.Spans {
		n := 0
		for i, c := range line {
			if c.X >= s.From && c.X < s.To && !in[i] {
				in[i] = true
				n++
			}
		}
		if n > maxBandChars {
			return nil, 0
		}
		total += n
	}
	if total == 0 || total >= len(line) {
		return nil, 0
	}
	return in, total
}

// bandCountry is the country whose band code the characters on the
// first stretch of blue spell, if they spell one.
func (b Band) bandCountry(line []Char, in []bool) (Country, bool) {
	var code []byte
	for i, c := range line {
		if in[i] {
			code = append(code, c.R)
		} else if len(code) > 0 {
			break
		}
	}
	return CountryOfBand(string(code))
}
