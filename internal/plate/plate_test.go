package plate

import (
	"fmt"
	"os"
	"strings"
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

// groups builds a line of confident characters with the printed gaps
// between the groups: a step of one pitch inside a group and of two
// across a gap.
func groups(gs ...string) []Char {
	var cs []Char
	x := float32(0)
	for gi, g := range gs {
		if gi > 0 {
			x++
		}
		for i := 0; i < len(g); i++ {
			cs = append(cs, Char{R: g[i], Conf: 0.99, X: x})
			x++
		}
	}
	for i := range cs {
		cs[i].X = (cs[i].X + 0.5) / x
	}
	return cs
}

// with changes character i of a line.
func with(cs []Char, i int, f func(*Char)) []Char {
	f(&cs[i])
	return cs
}

func unsure(c float32) func(*Char) { return func(ch *Char) { ch.Conf = c } }

func alt(r byte) func(*Char) { return func(ch *Char) { ch.Alt, ch.AltConf = r, 0.2 } }

// input is a line and the band evidence that comes with it.
type input struct {
	chars []Char
	band  Band
}

func plain(cs []Char) input { return input{chars: cs} }

// onBlue is a line whose pixels show the band's blue up to X = to.
func onBlue(cs []Char, to float32) input {
	return input{chars: cs, band: Band{Spans: []Span{{From: -0.1, To: to}}}}
}

// banded is a line read with the band's code: the code on the blue at
// the left, the registration after it.
func banded(code string, reg []Char) input {
	var cs []Char
	for i := 0; i < len(code); i++ {
		cs = append(cs, Char{R: code[i], Conf: 0.99, X: 0.02 + 0.03*float32(i)})
	}
	return onBlue(append(cs, shift(reg)...), 0.12)
}

func TestCandidates(t *testing.T) {
	tests := []struct {
		name      string
		in        input
		countries []Country
		want      string
		country   Country
	}{
		{"norwegian as read", plain(line("AB12345", nil, nil)), nil, "AB12345", "NO"},
		{"norwegian electric series", plain(line("EV98765", nil, nil)), nil, "EV98765", "NO"},
		{"swedish 2019 format", plain(line("ABC12A", nil, nil)), []Country{"SE"}, "ABC12A", "SE"},
		{"unsure 8 in a letter place becomes B", plain(line("A812345", map[int]float32{1: 0.5}, nil)), nil, "AB12345", "NO"},
		{"confident 8 is not changed", plain(line("A812345", nil, nil)), nil, "A812345", ""},
		{"runner-up O supports 0 to O", plain(line("ABC1O3", nil, map[int]byte{4: '0'})), []Country{"SE"}, "ABC103", "SE"},
		{"foreign plate read generically", plain(line("7EAV033", nil, nil)), nil, "7EAV033", ""},
		{"no country expected", plain(line("AB12345", nil, nil)), []Country{}, "AB12345", ""},

		// The band only with evidence.
		{"unsure first letter kept without band evidence", plain(line("NTD9247", map[int]float32{0: 0.4}, nil)), nil, "NTD9247", "DE"},
		{"first letter of a line that fits nothing kept", plain(line("XTD92", map[int]float32{0: 0.4}, nil)), []Country{"NO"}, "XTD92", ""},
		{"unsure letter inside kept", plain(line("XXWD829", map[int]float32{3: 0.5}, nil)), []Country{"SE"}, "XXWD829", ""},
		{"band code of the format's country kept without evidence", plain(append([]Char{{R: 'S', Conf: 0.99, X: 0.05}}, shift(line("ABC123", nil, nil))...)), []Country{"SE", "DE"}, "SABC123", "DE"},
		{"band code on the blue dropped", banded("S", line("ABC123", nil, nil)), []Country{"SE", "DE"}, "ABC123", "SE"},
		{"unsure band letter on the blue dropped", onBlue(with(line("SJDZ710", nil, nil), 0, unsure(0.3)), 0.1), []Country{"SE", "DE"}, "JDZ710", "SE"},
		{"band code of an unexpected country dropped", banded("HR", groups("ZG", "1234", "AB")), nil, "ZG1234AB", "HR"},
		{"the band names the country", banded("FIN", line("ABC123", nil, nil)), []Country{"SE", "FI"}, "ABC123", "FI"},
		{"dropped read stays generic where no format fits", banded("D", line("K9X7", nil, nil)), []Country{"SE"}, "K9X7", ""},
		{"letter right of the blue kept", onBlue(line("NTD9247", nil, nil), 0.05), nil, "NTD9247", "DE"},
		{"blue under four characters is no band", onBlue(line("ABCD123", nil, nil), 0.55), []Country{"SE"}, "ABCD123", ""},

		// Letters and digits keep to their group.
		{"1 between letters with runner-up I", plain(with(groups("RK", "857", "A1"), 6, alt('I'))), []Country{}, "RK857AI", ""},
		// A doubt alone is no reason without a layout: mixed groups are common.
		{"unsure 1 between letters stays", plain(with(groups("RK", "857", "A1"), 6, unsure(0.45))), []Country{}, "RK857A1", ""},
		{"confident 1 between letters stays", plain(groups("RK", "857", "A1")), []Country{}, "RK857A1", ""},
		{"S among digits with runner-up 5", plain(with(groups("RK", "8S7", "AI"), 3, alt('5'))), []Country{}, "RK857AI", ""},
		{"unsure S among digits stays", plain(with(groups("RK", "8S7", "AI"), 3, unsure(0.5))), []Country{}, "RK8S7AI", ""},
		{"a 1 alone in its group stays", plain(with(groups("RK", "857", "1"), 5, unsure(0.45))), []Country{}, "RK8571", ""},
		{"a mixed group is not changed", plain(with(line("AB1C2D", nil, nil), 2, unsure(0.45))), []Country{}, "AB1C2D", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Candidates(tt.in.chars, tt.in.band, Options{Countries: tt.countries})
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
			for _, x := range c {
				if !tt.in.band.Seen() && (x.Dropped > 0 || len(x.Text) != len(tt.in.chars)) {
					t.Errorf("dropped a character without band evidence: %+v", x)
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
	c := Candidates(line("8BC12Z", map[int]float32{0: 0.5, 5: 0.5}, nil), Band{}, Options{Countries: []Country{"SE"}})
	for _, x := range c {
		if x.Fixes > 0 {
			t.Errorf("ambiguous fix used: %+v", x)
		}
	}
	if len(c) == 0 || c[0].Text != "8BC12Z" {
		t.Errorf("candidates %+v, want the raw read", c)
	}
	// With a last character only a letter can be, one format fits.
	if c := Candidates(line("8BC12A", map[int]float32{0: 0.5}, nil), Band{}, Options{Countries: []Country{"SE"}}); c[0].Text != "BBC12A" {
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
		Candidates(cs, Band{}, Options{})
	})
}

// FuzzCandidates: any line and any band evidence give ranked, unique
// candidates, and no candidate drops a character the evidence does not
// put on the band's blue, nor changes one but within its confusion pair.
func FuzzCandidates(f *testing.F) {
	f.Add([]byte("AB12345"), []byte{9, 200, 3}, uint8(0), uint8(0))
	f.Add([]byte("SABC123"), []byte{0, 0, 250, 1}, uint8(1), uint8(30))
	f.Add([]byte("HRZG1234AB"), []byte{5}, uint8(2), uint8(40))
	f.Add([]byte("RK857A1"), []byte{0, 0, 0, 0, 0, 0, 60}, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, text, conf []byte, spans, to uint8) {
		const set = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		if len(text) > 16 {
			text = text[:16]
		}
		cs := make([]Char, len(text))
		x := float32(0)
		for i, b := range text {
			c := Char{R: set[int(b)%len(set)], Conf: 0.99}
			if i < len(conf) {
				c.Conf = float32(conf[i]) / 255
				c.Alt, c.AltConf = set[int(conf[i])%len(set)], float32(255-conf[i])/255
				x += float32(conf[i] % 3)
			}
			x++
			c.X = x
			cs[i] = c
		}
		for i := range cs {
			cs[i].X /= x + 1
		}
		var band Band
		for k := 0; k < int(spans%3); k++ {
			band.Spans = append(band.Spans, Span{From: float32(k)*0.5 - 0.1, To: float32(k)*0.5 + float32(to)/255})
		}
		c := Candidates(cs, band, Options{})
		for i, x := range c {
			if i > 0 && (x.Conf > c[i-1].Conf || x.Text == c[0].Text) {
				t.Fatalf("not ranked and unique: %+v", c)
			}
			if len(x.Text)+x.Dropped != len(cs) || !band.Seen() && x.Dropped > 0 {
				t.Fatalf("%+v drops characters without the evidence %+v", x, band)
			}
			if x.Dropped == 0 {
				for k := range x.Text {
					if r := cs[k].R; x.Text[k] != r && toLetter[r] != x.Text[k] && toDigit[r] != x.Text[k] {
						t.Fatalf("%+v changes %c to %c", x, r, x.Text[k])
					}
				}
			}
		}
	})
}

func TestCountryFormats(t *testing.T) {
	fits := map[Country][]string{
		"AT": {"W12345A", "GU123AB", "FK1ABC"},
		"BE": {"1ABC123", "ABC123", "123ABC"},
		"BG": {"CA1234AB", "E1234KX"},
		"HR": {"ZG1234AB", "ST123A"},
		"CY": {"ABC123"},
		"CZ": {"1A23456", "1AB2345"},
		"DK": {"AB12345"},
		"EE": {"123ABC"},
		"FI": {"ABC123", "AB123"},
		"FR": {"AB123CD", "123AB75"},
		"DE": {"BAB1234", "HHX123", "MAB12"},
		"GR": {"IKA1234"},
		"HU": {"AAAB123", "ABC123"},
		"IE": {"191D12345", "08KY123"},
		"IT": {"AB123CD", "AB12345"},
		"LV": {"AB1234", "AB12"},
		"LT": {"ABC123"},
		"LU": {"AB1234", "P1234"},
		"MT": {"ABC123"},
		"NL": {"GBB01B", "G123BB", "12BBB3", "1BBB23"},
		"PL": {"WA12345", "KR1234A"},
		"PT": {"AB12CD", "12AB34", "1234AB", "AB1234"},
		"RO": {"B123ABC", "B12ABC", "CJ12ABC"},
		"SK": {"BA123AB"},
		"SI": {"LJA1234", "MB12345"},
		"ES": {"1234BCD", "M1234AB"},
		"SE": {"ABC123", "ABC12A"},
		"NO": {"AB12345", "AB1234"},
		"IS": {"ABC12", "AB123"},
		"LI": {"FL12345", "FL12"},
		"CH": {"ZH123456", "AG12"},
		"GB": {"AB12CDE", "A123BCD", "ABZ1234"},
	}
	for _, c := range Countries() {
		if len(fits[c]) == 0 {
			t.Errorf("no example plate for %s", c)
		}
	}
	for c, plates := range fits {
		for _, p := range plates {
			got := Candidates(line(p, nil, nil), Band{}, Options{Countries: []Country{c}})
			if got[0].Text != p || got[0].Country != c || got[0].Fixes != 0 {
				t.Errorf("%s: %s read as %+v", c, p, got[0])
			}
		}
	}
	// Letters a country never issues, and prefixes it does not have.
	for c, plates := range map[Country][]string{
		"ES": {"1234ABC"},
		"GB": {"AB12CDI"},
		"IT": {"AB123CI"},
		"GR": {"ABC1234"},
		"CH": {"XX123456"},
		"RO": {"XX12ABC"},
		"SE": {"ABI123"},
		"NL": {"AB01BB"},
		"DE": {"ABCDE1234"}, // nine characters
		"LV": {"AB1"},       // shorter than any listed format
	} {
		for _, p := range plates {
			if got := Candidates(line(p, nil, nil), Band{}, Options{Countries: []Country{c}}); len(got) > 0 && got[0].Country != "" {
				t.Errorf("%s: %s read as %+v", c, p, got[0])
			}
		}
	}
}

func TestCountriesAndBands(t *testing.T) {
	if !Known("NO") || Known("XX") || Known("") || Known("no") {
		t.Error("Known")
	}
	for code, want := range map[string]Country{"N": "NO", "S": "SE", "UK": "GB", "GB": "GB", "FL": "LI", "SLO": "SI", "EST": "EE", "D": "DE"} {
		if c, ok := CountryOfBand(code); !ok || c != want {
			t.Errorf("CountryOfBand(%s) = %s, %v", code, c, ok)
		}
	}
	if _, ok := CountryOfBand("XX"); ok {
		t.Error("XX is a band code")
	}
	if BandCode("GB") != "UK" || BandCode("XX") != "" || CountryName("SE") != "Sweden" {
		t.Error("BandCode, CountryName")
	}
	for _, c := range DefaultCountries {
		if !Known(c) {
			t.Errorf("default country %s unknown", c)
		}
	}
	// EU27, EEA and Switzerland and the UK.
	if n := len(Countries()); n != 32 {
		t.Errorf("%d countries, want 32", n)
	}
}

func TestExpand(t *testing.T) {
	for pat, want := range map[string]string{
		"LL D{1,3}":  "LLD LLDD LLDDD",
		"D LLL DDD":  "DLLLDDD",
		"L{2} A":     "LLA",
		"L{1,2}D{2}": "LDD LLDD",
	} {
		got, err := expand(pat)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("expand(%q) = %v, %v; want %s", pat, got, err, want)
		}
	}
	for _, bad := range []string{"X", "L{", "L{0}", "L{3,2}", "L{a}", "L{1,9}"} {
		if _, err := expand(bad); err == nil {
			t.Errorf("expand(%q) accepted", bad)
		}
	}
}

func TestGroups(t *testing.T) {
	for _, tt := range []struct {
		line []Char
		want string
	}{
		{groups("AB", "12345"), "0011111"},
		{groups("RK", "857", "AI"), "0011122"},
		{line("ABC123", nil, nil), "000000"},
		{groups("A", "B"), "00"}, // too short to tell a gap
		{[]Char{{R: 'A'}, {R: 'B'}, {R: 'C'}}, "000"},
	} {
		g := Groups(tt.line)
		var b strings.Builder
		for _, x := range g {
			b.WriteByte(byte('0' + x))
		}
		if b.String() != tt.want {
			t.Errorf("Groups = %s, want %s", b.String(), tt.want)
		}
	}
}

// TestGroupFixesKeepReadAsRead: the reading as read stays in the list,
// below its group-consistent one; a group of two that could go either
// way is not changed.
func TestGroupFixesKeepReadAsRead(t *testing.T) {
	c := Candidates(with(groups("RK", "857", "A1"), 6, alt('I')), Band{}, Options{Countries: []Country{}})
	if len(c) != 2 || c[0].Text != "RK857AI" || c[0].Fixes != 1 || c[1].Text != "RK857A1" || c[1].Fixes != 0 {
		t.Errorf("candidates %+v", c)
	}
	g := groups("AB", "B1")
	g[2].Conf, g[3].Conf = 0.4, 0.4
	if text, n := groupFixes(g); n != 0 || string(text) != "ABB1" {
		t.Errorf("groupFixes(AB B1) = %s, %d", text, n)
	}
}

// TestPlatesDoc: docs/plates.md lists every country with its code and
// band codes, and every layout's name.
func TestPlatesDoc(t *testing.T) {
	b, err := os.ReadFile("../../docs/plates.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range countryTable {
		row := fmt.Sprintf("| %s | %s | %s |", c.name, c.code, strings.Join(c.bands, ", "))
		i := strings.Index(doc, row)
		if i < 0 {
			t.Errorf("docs/plates.md has no row %q", row)
			continue
		}
		rowText, _, _ := strings.Cut(doc[i:], "\n")
		for _, l := range c.layouts {
			if !strings.Contains(rowText, l.name) {
				t.Errorf("docs/plates.md: %s's row does not name its layout %q", c.name, l.name)
			}
		}
	}
}
