// Package plate knows what number plates look like: it normalises text to
// the characters plates use, knows the layouts and EU band codes of the
// countries of the EU and the EEA, Switzerland and the United Kingdom
// (docs/plates.md), and turns a recogniser's line of characters into
// ranked plate candidates. It never invents or drops a character without
// evidence: it fixes the usual reading confusions only where a layout, or
// a group of one class, needs it and the recogniser itself doubted the
// character, and drops characters as the EU band only where the reader's
// pixels put them on the band's blue. It is pure Go and reads no images;
// the reader and the decisions both use it, so a plate is spelt the same
// way everywhere.
package plate

import (
	"strings"
	"unicode"
)

// Normalize upper-cases s and keeps only A-Z and 0-9, mapping the
// national letters and full-width forms a recogniser may produce to their
// plate spelling. It is the canonical key for a plate everywhere in
// anprd.
func Normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r := fold(r); r != 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fold maps one rune to its plate character, or 0 when it is not one.
func fold(r rune) rune {
	if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
		r -= 0xFEE0
	}
	r = unicode.ToUpper(r)
	switch {
	case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return r
	case r == 'Æ' || r == 'Ä':
		return 'A'
	case r == 'Ø' || r == 'Ö':
		return 'O'
	case r == 'Å':
		return 'A'
	case r == 'Ü':
		return 'U'
	}
	return 0
}

// SameForScoring is the benchmark scoring convention of
// shared/data/README.md: normalised, with letter O and digit 0 the same.
func SameForScoring(a, b string) bool { return ScoringKey(a) == ScoringKey(b) }

// ScoringKey is s as the scoring convention compares it: normalised, with
// every letter O written as the digit 0.
func ScoringKey(s string) string { return strings.ReplaceAll(Normalize(s), "O", "0") }

// FoldGlyph maps one character a text recogniser read to the plate
// character it stands for, or "" if it stands for none. Plates are upper
// case, so a lower-case reading is a shape: l and | are the stroke of an
// I (or a 1, which the formats decide).
func FoldGlyph(s string) string {
	switch s {
	case "l", "|", "丨":
		return "I"
	}
	r := []rune(s)
	if len(r) != 1 {
		return ""
	}
	if f := fold(r[0]); f != 0 {
		return string(f)
	}
	return ""
}
