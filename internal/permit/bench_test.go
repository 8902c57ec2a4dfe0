package permit_test

import (
	"testing"

	"anprd/internal/permit"
	"anprd/internal/permit/permitgen"
	"anprd/internal/permit/permittest"
	"anprd/internal/plate"
)

const benchPermits = 100000

// BenchmarkHolders is the plate lookup of a decision: the index read and
// the records it names, half for registered plates and half not.
func BenchmarkHolders(b *testing.B) {
	s, _ := permittest.Store(b)
	if err := permitgen.Load(s, benchPermits, 1); err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1024)
	for i := range keys {
		p := permitgen.Plate((i * 7919) % (3 * benchPermits))
		if i%2 == 1 {
			p = permitgen.Plate(3*benchPermits + i)
		}
		keys[i] = plate.ConfusionKey(p)
	}
	b.ResetTimer()
	found := 0
	err := s.View(func(v *permit.View) error {
		for i := 0; b.Loop(); i++ {
			hs, err := v.Holders(keys[i%len(keys)])
			if err != nil {
				return err
			}
			found += len(hs)
		}
		return nil
	})
	if err != nil || found == 0 {
		b.Fatalf("err %v, found %d", err, found)
	}
}
