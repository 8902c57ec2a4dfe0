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
	Fixes   int     // characters changed to fit the format
	Dropped int     // characters dropped (an EU band letter)
}

// Options say what a site expects.
type Options struct {
	// Countries whose formats are tried, in order of preference. The
	// generic format is always tried last.
	Countries []Country
}

// DefaultCountries are the countries a Norwegian or Swedish garage sees
// most.
var DefaultCountries = []Country{"NO", "SE", "DK", "FI", "DE", "PL"}

const (
	// euBandEdge: a letter in the leftmost part of a line may be the
	// country code in the blue EU band (S, N, DK, ...), not part of the
	// registration.
	euBandEdge    = 0.16
	fixFactor     = 0.9  // confidence kept per fixed character
	fixDoubt      = 0.6  // a character read with less confidence may be fixed
	fixAltMin     = 0.05 // or one whose runner-up, at least this likely, is the fix
	genFactor     = 0.80 // generic plates rank below a format match
	countryFactor = 0.98 // per place down the list of expected countries
	dropDoubt     = 0.55 // a character read with less confidence may be dropped
	dropFactor    = 0.95 // confidence kept when a character was dropped
)

// Candidates returns the plate readings of a line, best first. It never
// guesses between formats: when fitting the line to the expected formats
// needs fixes that disagree, only the readings without fixes are kept.
func Candidates(line []Char, o Options) []Candidate {
	countries := o.Countries
	if countries == nil {
		countries = DefaultCountries
	}
	out, formatted := fit(line, 0, countries, true)
	// A line that starts with a country's band code and then fits that
	// country's format is that country's plate with its band read too.
	for i, c := range countries {
		code := BandCode(c)
		if code == "" || len(line) <= len(code)+1 || line[len(code)-1].X > euBandEdge*1.5 {
			continue
		}
		match := true
		for k := 0; k < len(code); k++ {
			match = match && line[k].R == code[k]
		}
		if match {
			cs, _ := fit(line[len(code):], len(code), countries[i:i+1], false)
			for k := range cs {
				cs[k].Conf *= prefer(i)
			}
			out = append(out, cs...)
		}
	}
	for _, v := range variants(line, formatted) {
		c, _ := fit(v.chars, v.dropped, countries, false)
		for i := range c {
			c[i].Conf *= dropFactor
		}
		out = append(out, c...)
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

type variant struct {
	chars   []Char
	dropped int
}

// variants are the line without characters that may not belong to the
// plate: the first one or two letters where the EU band's country code
// stands (when the line as read fits no format, or the recogniser was
// unsure of them), or one character the recogniser was unsure of (a
// separator or an emblem read as a letter). Only readings that then fit a
// country format are used.
func variants(line []Char, formatted bool) []variant {
	var vs []variant
	for k := 1; k <= 2 && k < len(line)-1; k++ {
		c := line[k-1]
		if c.X > euBandEdge || c.R < 'A' || c.R > 'Z' || formatted && c.Conf >= dropDoubt {
			break
		}
		vs = append(vs, variant{chars: line[k:], dropped: k})
	}
	for i, c := range line {
		if c.Conf < dropDoubt && (i > 0 || len(vs) == 0) {
			v := make([]Char, 0, len(line)-1)
			v = append(append(v, line[:i]...), line[i+1:]...)
			vs = append(vs, variant{chars: v, dropped: 1})
		}
	}
	return vs
}

// fit tries the formats of the given countries on chars and, if generic,
// the generic format; formatted says whether a country format fitted.
func fit(chars []Char, dropped int, countries []Country, generic bool) (cands []Candidate, formatted bool) {
	base := meanConf(chars)
	var exact, fixed []Candidate
	for ci, country := range countries {
		for i := range Formats {
			f := &Formats[i]
			if f.Country != country || len(f.Pattern) != len(chars) {
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
	formatted = len(exact)+len(fixed) > 0
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
	if generic && len(chars) >= GenericMin && len(chars) <= GenericMax {
		raw := make([]byte, len(chars))
		for i, c := range chars {
			raw[i] = c.R
		}
		out = append(out, Candidate{Text: string(raw), Conf: base * genFactor})
	}
	return out, formatted
}

// conform fits chars to f, changing confusable characters where a
// position needs the other class.
func conform(f *Format, chars []Char) (string, int, bool) {
	out := make([]byte, len(chars))
	fixes := 0
	for i, c := range chars {
		cls := f.Pattern[i]
		if f.classOK(cls, c.R) {
			out[i] = c.R
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
		out[i] = m
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
