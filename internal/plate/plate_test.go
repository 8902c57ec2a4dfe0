package plate

import (
	"testing"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"ab 12345": "AB12345",
		"EL-43210": "EL43210",
		"ABC·12A":  "ABC12A",
		"ＡＢ１２３４５":  "AB12345", // full-width, as a recogniser trained on Chinese may read
		"øæå":      "OAA",
		"粤B·12345": "B12345",
		"":         "",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSameForScoring(t *testing.T) {
	if !SameForScoring("CK0A1F", "ckoa1f") || !SameForScoring("OSG 719", "0SG719") {
		t.Error("O and 0 must score the same")
	}
	if SameForScoring("CK0A1F", "CKOAIF") {
		t.Error("I and 1 are different characters in scoring")
	}
	if k := ScoringKey("osg-7 19"); k != "0SG719" {
		t.Errorf("ScoringKey = %q", k)
	}
}

func TestFoldGlyph(t *testing.T) {
	for in, want := range map[string]string{"a": "A", "7": "7", "l": "I", "|": "I", "-": "", "京": "", "Ｚ": "Z", "ab": ""} {
		if got := FoldGlyph(in); got != want {
			t.Errorf("FoldGlyph(%q) = %q, want %q", in, got, want)
		}
	}
}

// line builds recogniser output: every character confident and spread
// evenly, except those given in doubt (index -> confidence).
func line(s string, doubt map[int]float32, alts map[int]byte) []Char {
	cs := make([]Char, len(s))
	for i := range s {
		cs[i] = Char{R: s[i], Conf: 0.99, X: (float32(i) + 0.5) / float32(len(s))}
		if c, ok := doubt[i]; ok {
			cs[i].Conf = c
		}
		if a, ok := alts[i]; ok {
			cs[i].Alt, cs[i].AltConf = a, 0.2
		}
	}
	return cs
}

func TestCandidates(t *testing.T) {
	tests := []struct {
		name      string
		chars     []Char
		countries []Country
		want      string
		country   Country
	}{
		{"norwegian as read", line("AB12345", nil, nil), nil, "AB12345", "NO"},
		{"norwegian electric series", line("EV98765", nil, nil), nil, "EV98765", "NO"},
		{"swedish 2019 format", line("ABC12A", nil, nil), []Country{"SE"}, "ABC12A", "SE"},
		{"unsure 8 in a letter place becomes B", line("A812345", map[int]float32{1: 0.5}, nil), nil, "AB12345", "NO"},
		{"confident 8 is not changed", line("A812345", nil, nil), nil, "A812345", ""},
		{"runner-up O supports 0 to O", line("ABC1O3", nil, map[int]byte{4: '0'}), []Country{"SE"}, "ABC103", "SE"},
		{"unsure EU band letter dropped", append([]Char{{R: 'S', Conf: 0.3, X: 0.05}}, shift(line("JDZ710", nil, nil))...), []Country{"SE", "DE"}, "JDZ710", "SE"},
		{"crisp band code of the format's country dropped", append([]Char{{R: 'S', Conf: 0.99, X: 0.05}}, shift(line("ABC123", nil, nil))...), []Country{"SE", "DE"}, "ABC123", "SE"},
		{"confident first letter kept", append([]Char{{R: 'B', Conf: 0.99, X: 0.05}}, shift(line("JDZ710", nil, nil))...), []Country{"SE", "DE"}, "BJDZ710", "DE"},
		{"unsure separator dropped", line("XXWD829", map[int]float32{3: 0.5}, nil), []Country{"SE"}, "XXW829", "SE"},
		{"foreign plate read generically", line("7EAV033", nil, nil), nil, "7EAV033", ""},
		{"no country expected", line("AB12345", nil, nil), []Country{}, "AB12345", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Candidates(tt.chars, Options{Countries: tt.countries})
			if len(c) == 0 {
				t.Fatal("no candidates")
			}
			if c[0].Text != tt.want || c[0].Country != tt.country {
				t.Errorf("best = %+v, want %s (%q); all %+v", c[0], tt.want, tt.country, c)
			}
			for i := 1; i < len(c); i++ {
				if c[i].Conf > c[i-1].Conf || c[i].Text == c[0].Text {
					t.Errorf("candidates not ranked and unique: %+v", c)
				}
			}
		})
	}
}

// shift moves a line right, as if a band stood at its left.
func shift(cs []Char) []Char {
	for i := range cs {
		cs[i].X = 0.15 + cs[i].X*0.85
	}
	return cs
}

// TestAmbiguousFixIsNoFix: when the formats would fix a read in
// different ways, none is applied.
func TestAmbiguousFixIsNoFix(t *testing.T) {
	// "8BC12Z" with the 8 and the Z unsure: Sweden's standard format
	// would make it BBC122, its 2019 format BBC12Z. The fixes disagree,
	// so only the raw read is left.
	c := Candidates(line("8BC12Z", map[int]float32{0: 0.5, 5: 0.5}, nil), Options{Countries: []Country{"SE"}})
	for _, x := range c {
		if x.Fixes > 0 {
			t.Errorf("ambiguous fix used: %+v", x)
		}
	}
	if len(c) == 0 || c[0].Text != "8BC12Z" {
		t.Errorf("candidates %+v, want the raw read", c)
	}
	// With a last character only a letter can be, one format fits.
	if c := Candidates(line("8BC12A", map[int]float32{0: 0.5}, nil), Options{Countries: []Country{"SE"}}); c[0].Text != "BBC12A" {
		t.Errorf("unambiguous: %+v", c)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"AB 12345", "ＡＢ１２", "øæå", "粤B·12345", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		for i := 0; i < len(n); i++ {
			if !(n[i] >= 'A' && n[i] <= 'Z' || n[i] >= '0' && n[i] <= '9') {
				t.Fatalf("Normalize(%q) = %q has %q", s, n, n[i])
			}
		}
		if Normalize(n) != n {
			t.Fatalf("Normalize not idempotent on %q", s)
		}
		cs := make([]Char, len(n))
		for i := range n {
			cs[i] = Char{R: n[i], Conf: float32(i%10) / 10, X: float32(i) / float32(len(n)+1)}
		}
		Candidates(cs, Options{})
	})
}
