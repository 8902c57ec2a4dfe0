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
