package plate

import (
	"math"
	"slices"
)

// Char is one character as the recogniser read it, already folded to a
// plate character.
type Char struct {
	R       byte    // A-Z or 0-9
	Conf    float32 // the recogniser's probability
	Alt     byte    // runner-up plate character, 0 if none
	AltConf float32
	X       float32 // position along the text line, 0 (left) to 1 (right)
}

// Candidate is one way to read a line as a plate.
type Candidate struct {
	Text    string
	Country Country // "" for the generic format
	Format  string
	Conf    float32 // 0..1: the characters' confidence, lowered for each fix
	Fixes   int     // characters changed to fit the format, or a group's class
	Dropped int     // characters dropped: those lying on the EU band's blue
}

// Options say what a site expects.
type Options struct {
	// Countries whose formats are tried, in order of preference. nil
	// means DefaultCountries; an empty list, only the generic format. The
	// generic format is always tried last.
	Countries []Country
}

// DefaultCountries are the countries a Norwegian or Swedish garage sees
// most.
var DefaultCountries = []Country{"NO", "SE", "DK", "FI", "DE", "PL"}

const (
	fixFactor     = 0.9  // confidence kept per fixed character
	fixDoubt      = 0.6  // a character read with less confidence may be fixed
	fixAltMin     = 0.05 // or one whose runner-up, at least this likely, is the fix
	genFactor     = 0.80 // generic plates rank below a format match
	countryFactor = 0.98 // per place down the list of expected countries
	// mixFactor: confidence kept, per character, by a generic reading
	// that leaves a character of the other class in a group although the
	// recogniser doubted it (groupFixes would change it). It is below
	// fixFactor, so the group's own class reads first and the reading as
	// read stays next in the list.
	mixFactor = 0.85
	// bandKeptFactor: confidence kept by a reading that keeps characters
	// lying on the band's blue. The pixels say they are the band's
	// country code, not the registration, which is printed on the plate's
	// white; the reading stays in the list, below the one without them
	// even where that one is only generic (genFactor).
	bandKeptFactor = 0.7
)

// Candidates returns the plate readings of a line, best first. band is
// the pixels' evidence of the EU band on the line (the zero Band: none).
//
// It never invents or drops a character without evidence: characters are
// changed only to fit a format's letter or digit position, or a group's
// class in the generic format, and only where the recogniser itself was
// unsure or thought of the other character; they are dropped only where
// they lie on the band's blue, which the registration never does. When
// fitting the line to the expected formats needs fixes that disagree,
// only the readings without fixes are kept. A line that fits no expected
// country is read with the generic format, as read.
func Candidates(line []Char, band Band, o Options) []Candidate {
	countries := o.Countries
	if countries == nil {
		countries = DefaultCountries
	}
	out := fit(line, 0, countries)
	if in, n := band.inBand(line); n > 0 {
		// The band's code names the plate's country: its formats are
		// tried first, even for a country the site does not expect.
		cs := countries
		if c, ok := band.bandCountry(line, in); ok {
			cs = append([]Country{c}, slices.DeleteFunc(slices.Clone(countries), func(x Country) bool { return x == c })...)
		}
		rest := make([]Char, 0, len(line)-n)
		for i, c := range line {
			if !in[i] {
				rest = append(rest, c)
			}
		}
		for i := range out {
			out[i].Conf *= bandKeptFactor
		}
		out = append(out, fit(rest, n, cs)...)
	}
	slices.SortStableFunc(out, func(a, b Candidate) int {
		switch {
		case a.Conf > b.Conf:
			return -1
		case a.Conf < b.Conf:
			return 1
		}
		return 0
	})
	// One entry per text, the best.
	seen := map[string]bool{}
	uniq := out[:0]
	for _, c := range out {
		if !seen[c.Text] {
			seen[c.Text] = true
			uniq = append(uniq, c)
		}
	}
	return uniq
}

// fit tries the formats of the given countries on chars, then the
// generic format.
func fit(chars []Char, dropped int, countries []Country) []Candidate {
	base := meanConf(chars)
	var exact, fixed []Candidate
	for ci, country := range countries {
		for _, f := range byCountry[country] {
			if f.Len() != len(chars) {
				continue
			}
			text, fixes, ok := conform(f, chars)
			if !ok {
				continue
			}
			c := Candidate{Text: text, Country: country, Format: f.Name, Fixes: fixes, Dropped: dropped,
				Conf: base * float32(math.Pow(fixFactor, float64(fixes))) * prefer(ci)}
			if fixes == 0 {
				exact = append(exact, c)
			} else {
				fixed = append(fixed, c)
			}
		}
	}
	out := exact
	// Fixes are used only when every fitting format agrees on the text.
	if len(fixed) > 0 && len(exact) == 0 {
		agree := true
		for _, c := range fixed[1:] {
			agree = agree && c.Text == fixed[0].Text
		}
		if agree {
			out = append(out, fixed...)
		}
	}
	if len(chars) >= GenericMin && len(chars) <= GenericMax {
		raw := make([]byte, len(chars))
		for i, c := range chars {
			raw[i] = c.R
		}
		gen := base * genFactor
		if text, fixes := groupFixes(chars); fixes > 0 {
			k := float64(fixes)
			out = append(out, Candidate{Text: string(text), Fixes: fixes, Dropped: dropped, Conf: gen * float32(math.Pow(fixFactor, k))})
			gen *= float32(math.Pow(mixFactor, k))
		}
		out = append(out, Candidate{Text: string(raw), Dropped: dropped, Conf: gen})
	}
	return out
}

// conform fits chars to f, changing confusable characters where a
// position needs the other class. A prefix must be read as it is.
func conform(f *Format, chars []Char) (string, int, bool) {
	out := make([]byte, len(chars))
	off := 0
	if len(f.Prefixes) > 0 {
		off = len(f.Prefixes[0])
		for i := 0; i < off; i++ {
			out[i] = chars[i].R
		}
		if !slices.Contains(f.Prefixes, string(out[:off])) {
			return "", 0, false
		}
	}
	fixes := 0
	for i, c := range chars[off:] {
		cls := f.Pattern[i]
		if f.classOK(cls, c.R) {
			out[off+i] = c.R
			continue
		}
		var m byte
		switch cls {
		case 'L':
			m = toLetter[c.R]
		case 'D':
			m = toDigit[c.R]
		}
		if m == 0 || !f.classOK(cls, m) || !credibleFix(c, m) {
			return "", 0, false
		}
		out[off+i] = m
		fixes++
	}
	return string(out), fixes, true
}

// prefer weighs a format match by its country's place in the site's
// list: the first country is the one most cars come from.
func prefer(i int) float32 { return float32(math.Pow(countryFactor, float64(i))) }

// credibleFix: the recogniser itself was unsure of c, or thought of m.
func credibleFix(c Char, m byte) bool {
	return c.Conf < fixDoubt || c.Alt == m && c.AltConf > fixAltMin
}

func meanConf(chars []Char) float32 {
	if len(chars) == 0 {
		return 0
	}
	// Geometric mean: one doubtful character pulls the plate down more
	// than an average would let it.
	var s float64
	for _, c := range chars {
		s += math.Log(math.Max(float64(c.Conf), 1e-6))
	}
	return float32(math.Exp(s / float64(len(chars))))
}
