package permitgen

import (
	"testing"

	"anprd/internal/plate"
)

func TestPlatesDistinctAndNormal(t *testing.T) {
	seen := map[string]bool{}
	for i := range 300000 {
		p := Plate(i)
		if seen[p] {
			t.Fatalf("plate %d (%s) repeats", i, p)
		}
		if plate.Normalize(p) != p || len(p) != 7 {
			t.Fatalf("plate %d is %q", i, p)
		}
		seen[p] = true
	}
	if err := Permit(7).Validate(); err != nil {
		t.Error(err)
	}
}
