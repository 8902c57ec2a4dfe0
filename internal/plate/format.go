package plate

import (
	"fmt"
	"strings"
)

// A Country is an ISO 3166 alpha-2 code in upper case, or "" for the
// generic format that lets a foreign car still be read.
type Country string

// Format is one plate layout at one length: a sequence of character
// classes, after one of a fixed set of prefixes where the layout has
// them.
type Format struct {
	Country Country
	Name    string
	// Prefixes, when set, are the letters the plate starts with, one of
	// them (Switzerland's cantons, Liechtenstein's FL); Pattern follows.
	Prefixes []string
	Pattern  string // one class per position: L letter, D digit, A either
	// NoLetters lists letters a country never issues in this format;
	// a read with one of them is not this format.
	NoLetters string
}

// Len is the number of characters of a plate in this format.
func (f *Format) Len() int {
	if len(f.Prefixes) > 0 {
		return len(f.Prefixes[0]) + len(f.Pattern)
	}
	return len(f.Pattern)
}

// Formats are the layouts anprd knows, one entry per country, layout and
// length, in the order of the countries table (formats.go). Personalised
// plates have no fixed layout and are matched by the generic format.
var Formats = expandAll(countryTable)

// byCountry indexes Formats.
var byCountry = func() map[Country][]*Format {
	m := map[Country][]*Format{}
	for i := range Formats {
		f := &Formats[i]
		m[f.Country] = append(m[f.Country], f)
	}
	return m
}()

// Generic bounds: what a plate of an unknown country may be.
const (
	GenericMin = 2
	GenericMax = 8
)

// minFormatLen: the layouts' combinations shorter than this are not
// listed. They are rare (low serials, small districts), and a short text
// in a scene is far more often a sign; such a plate is still read with
// the generic format.
const minFormatLen = 4

// classOK reports whether r fits class c of format f.
func (f *Format) classOK(c byte, r byte) bool {
	letter := r >= 'A' && r <= 'Z'
	switch c {
	case 'L':
		return letter && !strings.ContainsRune(f.NoLetters, rune(r))
	case 'D':
		return r >= '0' && r <= '9'
	}
	return !letter || !strings.ContainsRune(f.NoLetters, rune(r))
}

// toLetter and toDigit are the recogniser's usual confusions, used only
// to fit a read to a format's letter or digit position, or to a group of
// its own class.
var (
	toLetter = map[byte]byte{'0': 'O', '1': 'I', '8': 'B', '5': 'S', '2': 'Z', '6': 'G'}
	toDigit  = map[byte]byte{'O': '0', 'D': '0', 'Q': '0', 'I': '1', 'B': '8', 'S': '5', 'Z': '2', 'G': '6'}
)

// Known reports whether anprd has c's formats and band code.
func Known(c Country) bool {
	_, ok := countryIndex[c]
	return ok
}

// Countries lists the known countries in the order of the table.
func Countries() []Country {
	out := make([]Country, len(countryTable))
	for i, c := range countryTable {
		out[i] = c.code
	}
	return out
}

// CountryName is c's name in English, or "" when c is not known.
func CountryName(c Country) string {
	if i, ok := countryIndex[c]; ok {
		return countryTable[i].name
	}
	return ""
}

// BandCode is the code country's plates show in the EU band (or, for a
// country without the band, its international vehicle code), or "".
func BandCode(c Country) string {
	if i, ok := countryIndex[c]; ok {
		return countryTable[i].bands[0]
	}
	return ""
}

// HasEUBand reports whether c's plates carry the blue EU band (the EU's
// and the EEA's do; Switzerland's and Liechtenstein's show their code
// without one).
func HasEUBand(c Country) bool { return Known(c) && c != "CH" && c != "LI" }

// CountryOfBand is the country whose band shows code (a current or a
// previous code: UK and GB are both the United Kingdom).
func CountryOfBand(code string) (Country, bool) {
	c, ok := bandIndex[code]
	return c, ok
}

var countryIndex = func() map[Country]int {
	m := map[Country]int{}
	for i, c := range countryTable {
		m[c.code] = i
	}
	return m
}()

var bandIndex = func() map[string]Country {
	m := map[string]Country{}
	for _, c := range countryTable {
		for _, b := range c.bands {
			m[b] = c.code
		}
	}
	return m
}()

// expandAll turns the countries' layouts into Formats.
func expandAll(table []country) []Format {
	var out []Format
	for _, c := range table {
		seen := map[string]bool{} // "L{1,3} L{1,2}" gives LLL twice
		for _, l := range c.layouts {
			pats, err := expand(l.pattern)
			if err != nil {
				panic(fmt.Sprintf("plate: %s %s: %v", c.code, l.name, err))
			}
			var prefixes []string
			if l.prefixes != "" {
				prefixes = strings.Fields(l.prefixes)
				for _, p := range prefixes {
					if len(p) != len(prefixes[0]) {
						panic(fmt.Sprintf("plate: %s %s: prefixes of different lengths", c.code, l.name))
					}
				}
			}
			for _, p := range pats {
				f := Format{Country: c.code, Name: l.name, Prefixes: prefixes, Pattern: p, NoLetters: l.noLetters}
				key := l.prefixes + "/" + p
				if n := f.Len(); n >= minFormatLen && n <= l.maxLen() && !seen[key] {
					seen[key] = true
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// expand turns a layout pattern into the fixed class strings it stands
// for. A pattern is classes (L, D, A), each optionally followed by a
// count, {n} or {min,max}; spaces are the printed gaps between groups and
// are not part of the result. "LL D{1,3}" is LLD, LLDD and LLDDD.
func expand(pattern string) ([]string, error) {
	out := []string{""}
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c == ' ' {
			continue
		}
		if c != 'L' && c != 'D' && c != 'A' {
			return nil, fmt.Errorf("class %q in %q", c, pattern)
		}
		lo, hi := 1, 1
		if i+1 < len(pattern) && pattern[i+1] == '{' {
			end := strings.IndexByte(pattern[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed count in %q", pattern)
			}
			spec := pattern[i+2 : i+end]
			a, b, isRange := strings.Cut(spec, ",")
			if _, err := fmt.Sscan(a, &lo); err != nil {
				return nil, fmt.Errorf("count %q in %q", spec, pattern)
			}
			hi = lo
			if isRange {
				if _, err := fmt.Sscan(b, &hi); err != nil {
					return nil, fmt.Errorf("count %q in %q", spec, pattern)
				}
			}
			if lo < 1 || hi < lo || hi > 8 {
				return nil, fmt.Errorf("count %q in %q", spec, pattern)
			}
			i += end
		}
		var next []string
		for _, s := range out {
			for n := lo; n <= hi; n++ {
				next = append(next, s+strings.Repeat(string(c), n))
			}
		}
		out = next
	}
	return out, nil
}
