package levenshtein

import "testing"

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"AB12345", "AB12345", 0}, {"AB12345", "A812345", 1}, {"AB12345", "B12345", 1}, {"ABC123", "XYZ789", 6}, {"", "AB", 2}, {"nmae", "name", 2}, {"debunce", "debounce", 1}} {
		if d := Distance(c.a, c.b); d != c.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, d, c.d)
		}
	}
}

// alignString writes an alignment as pairs, a's character over b's, - for
// none: "A8 B- -C".
func alignString(ops []Op) string {
	var s []byte
	for i, o := range ops {
		if i > 0 {
			s = append(s, ' ')
		}
		a, b := o.A, o.B
		if o.Edit == Ins {
			a = '-'
		}
		if o.Edit == Del {
			b = '-'
		}
		s = append(s, a, b)
	}
	return string(s)
}

func TestAlign(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"AB12345", "AB12345", "AA BB 11 22 33 44 55"},
		{"AB12345", "A812345", "AA B8 11 22 33 44 55"},
		{"AB12345", "B12345", "A- BB 11 22 33 44 55"},
		{"ABC123", "ABXC123", "AA BB -X CC 11 22 33"},
		{"ABC123", "ABC1234", "AA BB CC 11 22 33 -4"},
		{"ABC", "", "A- B- C-"},
		{"", "AB", "-A -B"},
		{"", "", ""},
		// Two substitutions or a deletion and an insertion: the
		// substitutions are taken.
		{"AB", "BA", "AB BA"},
		{"ABC", "BCA", "A- BB CC -A"},
		{"ABC", "XYZ", "AX BY CZ"},
	} {
		ops := Align(c.a, c.b)
		if got := alignString(ops); got != c.want {
			t.Errorf("Align(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
		checkAlignment(t, c.a, c.b, ops)
	}
}

// checkAlignment fails t unless ops spell a and b and make Distance(a, b)
// edits.
func checkAlignment(t *testing.T, a, b string, ops []Op) {
	t.Helper()
	var ra, rb []byte
	edits := 0
	for _, o := range ops {
		switch o.Edit {
		case Match:
			if o.A != o.B {
				t.Fatalf("Align(%q, %q): match of %q and %q", a, b, o.A, o.B)
			}
			ra, rb = append(ra, o.A), append(rb, o.B)
		case Sub:
			if o.A == o.B {
				t.Fatalf("Align(%q, %q): substitution of %q by itself", a, b, o.A)
			}
			ra, rb = append(ra, o.A), append(rb, o.B)
			edits++
		case Del:
			ra = append(ra, o.A)
			edits++
		case Ins:
			rb = append(rb, o.B)
			edits++
		}
	}
	if string(ra) != a || string(rb) != b {
		t.Fatalf("Align(%q, %q) spells %q and %q", a, b, ra, rb)
	}
	if d := Distance(a, b); edits != d {
		t.Fatalf("Align(%q, %q) makes %d edits, Distance is %d", a, b, edits, d)
	}
}

func FuzzAlign(f *testing.F) {
	f.Add("AB12345", "A812345")
	f.Add("ABC123", "XABC1234")
	f.Add("", "AB")
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 64 || len(b) > 64 {
			return // the matrix is len(a) by len(b); plates are short
		}
		checkAlignment(t, a, b, Align(a, b))
	})
}
