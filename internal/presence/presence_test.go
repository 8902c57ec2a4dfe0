package presence_test

import (
	"slices"
	"testing"
	"time"

	"anprd/internal/presence"
	"anprd/internal/state"
)

var t0 = time.Date(2026, 4, 15, 8, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) (*presence.Store, *state.DB) {
	t.Helper()
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	s, err := presence.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func count(t *testing.T, s *presence.Store, r presence.Ref, since time.Time) int {
	t.Helper()
	var n int
	err := s.View(func(tx *presence.Tx) (err error) {
		n, err = tx.Count(r, since, "", "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func plates(vs []*presence.Vehicle) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Facility+"/"+v.Plate)
	}
	slices.Sort(out)
	return out
}

func TestEnterExitCount(t *testing.T) {
	dir := t.TempDir()
	s, db := open(t, dir)
	p1 := presence.Ref{Kind: presence.Permit, ID: "P1"}
	pool := presence.Ref{Kind: presence.Pool, ID: "acme"}
	add := func(v presence.Vehicle) {
		t.Helper()
		if err := s.Update(func(tx *presence.Tx) error { return tx.Enter(&v) }); err != nil {
			t.Fatal(err)
		}
	}
	add(presence.Vehicle{Facility: "f1", Plate: "AB12345", Entered: t0, Permit: "P1", Pool: "acme", Source: presence.FromLane})
	add(presence.Vehicle{Facility: "f1", Plate: "CD12345", Entered: t0.Add(time.Hour), Permit: "P1", Source: presence.FromLane})
	add(presence.Vehicle{Facility: "f2", Plate: "EF12345", Entered: t0, Permit: "P1", Pool: "acme", Source: presence.FromLane})
	add(presence.Vehicle{Facility: "f1", Plate: "GH12345", Entered: t0, Permit: "P1", NotCounted: true, Source: presence.FromLane})
	if n := count(t, s, p1, time.Time{}); n != 3 {
		t.Errorf("P1 count = %d, want 3 (one vehicle came in not counted)", n)
	}
	if n := count(t, s, pool, time.Time{}); n != 2 {
		t.Errorf("pool count = %d", n)
	}
	// Older than since: past the maximum stay, no longer counted.
	if n := count(t, s, p1, t0.Add(time.Minute)); n != 1 {
		t.Errorf("P1 count since t0+1m = %d, want 1", n)
	}
	// A vehicle's own record is left out of its count.
	s.View(func(tx *presence.Tx) error {
		if n, _ := tx.Count(p1, time.Time{}, "f1", "AB12345"); n != 2 {
			t.Errorf("count without AB12345 = %d", n)
		}
		return nil
	})
	// Entering again replaces the record; counts do not double.
	add(presence.Vehicle{Facility: "f1", Plate: "AB12345", Entered: t0.Add(2 * time.Hour), Permit: "P1", Pool: "acme", Source: presence.FromLane})
	if n := count(t, s, p1, time.Time{}); n != 3 {
		t.Errorf("P1 count after a re-entry = %d", n)
	}

	// It all survives a restart.
	db.Close()
	s, db = open(t, dir)
	defer db.Close()
	all, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	if got := plates(all); !slices.Equal(got, []string{"f1/AB12345", "f1/CD12345", "f1/GH12345", "f2/EF12345"}) {
		t.Errorf("after reopen: %v", got)
	}
	s.View(func(tx *presence.Tx) error {
		v, _ := tx.Inside("f1", "AB12345")
		if v == nil || !v.Entered.Equal(t0.Add(2*time.Hour)) || v.Pool != "acme" {
			t.Errorf("Inside = %+v", v)
		}
		vs, _ := tx.Confusable("f1", "A812345")
		if len(vs) != 1 || vs[0].Plate != "AB12345" {
			t.Errorf("Confusable = %v", plates(vs))
		}
		return nil
	})

	// Exit: removed, and no longer counted.
	s.Update(func(tx *presence.Tx) error {
		v, err := tx.Exit("f1", "CD12345")
		if v == nil || err != nil {
			t.Errorf("Exit = %v, %v", v, err)
		}
		v, err = tx.Exit("f1", "NOTHERE")
		if v != nil || err != nil {
			t.Errorf("Exit of a plate not inside = %v, %v", v, err)
		}
		return nil
	})
	if n := count(t, s, p1, time.Time{}); n != 2 {
		t.Errorf("P1 count after exit = %d", n)
	}
}

// TestCorrections: a technician or the central system removes, clears and
// adds vehicles, and stale ones expire.
func TestCorrections(t *testing.T) {
	s, db := open(t, t.TempDir())
	defer db.Close()
	p1 := presence.Ref{Kind: presence.Permit, ID: "P1"}
	if err := s.Add(presence.Vehicle{Facility: "f1", Plate: "ab 12345", Entered: t0, Permit: "P1"}); err != nil {
		t.Fatal(err)
	}
	s.Add(presence.Vehicle{Facility: "f1", Plate: "CD12345", Entered: t0.Add(-8 * 24 * time.Hour), Permit: "P1"})
	s.Add(presence.Vehicle{Facility: "f2", Plate: "EF12345", Entered: t0, Account: "A1"})
	all, _ := s.List("")
	if got := plates(all); !slices.Equal(got, []string{"f1/AB12345", "f1/CD12345", "f2/EF12345"}) || all[0].Source != presence.FromCorrection {
		t.Errorf("after Add: %v (source %s)", got, all[0].Source)
	}
	old, err := s.Expire(t0.Add(-7 * 24 * time.Hour))
	if err != nil || len(old) != 1 || old[0].Plate != "CD12345" {
		t.Errorf("Expire = %v, %v", plates(old), err)
	}
	if v, err := s.Remove("f1", "AB12345"); err != nil || v == nil {
		t.Errorf("Remove = %v, %v", v, err)
	}
	if n := count(t, s, p1, time.Time{}); n != 0 {
		t.Errorf("P1 count after corrections = %d", n)
	}
	if n, err := s.Clear("f2"); err != nil || n != 1 {
		t.Errorf("Clear = %d, %v", n, err)
	}
	if n := count(t, s, presence.Ref{Kind: presence.Account, ID: "A1"}, time.Time{}); n != 0 {
		t.Errorf("account count after Clear = %d", n)
	}
	if err := s.Add(presence.Vehicle{Facility: "f1", Plate: "---", Entered: t0}); err == nil {
		t.Error("Add of no plate accepted")
	}
	if err := s.Add(presence.Vehicle{Facility: "f1", Plate: "AB12345"}); err == nil {
		t.Error("Add without entry time accepted")
	}
}
