package decide_test

import (
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/permit/permitgen"
	"anprd/internal/permit/permittest"
	"anprd/internal/presence"
)

// BenchmarkDecide is a whole entrance decision on the real stores (100,000
// permits, a tenth with a vehicle inside), each in its own read
// transaction as a lane would: half the plates registered, half not.
func BenchmarkDecide(b *testing.B) {
	const n = 100000
	store, db := permittest.Store(b)
	if err := permitgen.Load(store, n, 1); err != nil {
		b.Fatal(err)
	}
	pres, err := presence.Open(db.DB)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 4, 15, 8, 0, 0, 0, oslo)
	err = pres.Update(func(tx *presence.Tx) error {
		for i := 0; i < n; i += 10 {
			p := permitgen.Permit(i)
			v := &presence.Vehicle{Facility: permitgen.Facility, Plate: p.Plates[0], Entered: t0.Add(-time.Hour),
				Permit: p.ID, Pool: p.Pool, Source: presence.FromLane}
			if err := tx.Enter(v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	l := lane(decide.Entrance)
	l.Facility = permitgen.Facility
	reads := make([]decide.Read, 1024)
	for i := range reads {
		p := permitgen.Plate((i * 7919) % (3 * n))
		if i%2 == 1 {
			p = permitgen.Plate(3*n + i)
		}
		reads[i] = decide.Read{Plate: p, Conf: 0.9, Time: t0}
	}
	classes := map[decide.Class]int{}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var d decide.Decision
		err := pres.View(func(tx *presence.Tx) error {
			v, err := store.ViewTx(tx.Bolt())
			if err != nil {
				return err
			}
			d, err = decide.Decide(reads[i%len(reads)], l, v, tx)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		classes[d.Class]++
	}
	if classes[decide.Unregistered] == 0 || classes[decide.Permit]+classes[decide.PermitInUse] == 0 {
		b.Fatalf("classes %v: the benchmark did not decide both kinds", classes)
	}
}
