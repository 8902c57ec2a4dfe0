package permit_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"anprd/internal/permit"
	"anprd/internal/permit/permittest"
	"anprd/internal/plate"
	"anprd/internal/state"

	bolt "go.etcd.io/bbolt"
)

func product(id string) permit.Change {
	return permit.Change{Op: permit.Put, Product: &permit.Product{ID: id, Facility: "f1"}}
}

func pput(id, prod, tenant string, plates ...string) permit.Change {
	return permit.Change{Op: permit.Put, Permit: &permit.Permit{ID: id, Tenant: tenant, Product: prod,
		Status: permit.Active, ValidFrom: permit.Date(2026, 1, 1), Plates: plates}}
}

func pdel(id string) permit.Change {
	return permit.Change{Op: permit.Delete, Permit: &permit.Permit{ID: id}}
}

// lookup returns the ids of the permits and accounts registering plate
// p, as the view's index finds them for the plate's confusion key. Each
// holder's place of the plate must be where the record lists it.
func lookup(t *testing.T, s *permit.Store, p string) []string {
	t.Helper()
	var ids []string
	err := s.View(func(v *permit.View) error {
		hs, err := v.Holders(plate.ConfusionKey(p))
		for _, h := range hs {
			if h.Plate != p {
				continue
			}
			var plates []string
			if h.Permit != nil {
				ids = append(ids, h.Permit.ID+"/"+h.Permit.Tenant)
				full, err := v.Permit(h.Permit.ID)
				if err != nil || full == nil || h.Permit.Plates != nil {
					t.Fatalf("permit %s: %+v, %v; holder's plates %q", h.Permit.ID, full, err, h.Permit.Plates)
				}
				plates = full.Plates
			} else {
				ids = append(ids, "acct:"+h.Account.ID)
				full, err := v.Account(h.Account.ID)
				if err != nil || full == nil || h.Account.Plates != nil {
					t.Fatalf("account %s: %+v, %v; holder's plates %q", h.Account.ID, full, err, h.Account.Plates)
				}
				plates = full.Plates
			}
			if i := slices.Index(plates, p); i != h.Pos {
				t.Errorf("plate %s is at %d of %q, the index says %d", p, i, plates, h.Pos)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

func TestApplyIsAllOrNothing(t *testing.T) {
	s, _ := permittest.Store(t, product("m"), pput("p1", "m", "t", "AB12345"))
	err := s.Apply(&permit.Batch{Seq: 2, Changes: []permit.Change{
		pput("p2", "m", "t", "CD12345"),
		pdel("p1"),
		pput("p3", "nope", "t", "EF12345"), // unknown product: the whole batch goes
	}})
	if err == nil || !strings.Contains(err.Error(), `product "nope" is not known`) {
		t.Fatalf("err = %v", err)
	}
	if got := lookup(t, s, "AB12345"); !slices.Equal(got, []string{"p1/t"}) {
		t.Errorf("p1 after a refused batch: %v", got)
	}
	if got := lookup(t, s, "CD12345"); got != nil {
		t.Errorf("p2 half-applied: %v", got)
	}
	if seq, _ := s.Seq(); seq != 1 {
		t.Errorf("seq = %d after a refused batch, want 1", seq)
	}
}

func TestSeqGapsAndRepeats(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	dir := db.Dir()
	s, err := permit.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(&permit.Batch{Seq: 1, Changes: []permit.Change{product("m")}}); err != nil {
		t.Fatal(err)
	}
	var gap *permit.ErrGap
	if err := s.Apply(&permit.Batch{Seq: 3, Changes: []permit.Change{product("x")}}); !errors.As(err, &gap) || gap.Stale() || gap.Last != 1 {
		t.Errorf("gap: %v", err)
	}
	if err := s.Apply(&permit.Batch{Seq: 1, Changes: []permit.Change{product("x")}}); !errors.As(err, &gap) || !gap.Stale() {
		t.Errorf("repeat: %v", err)
	}
	db.Close()
	// The sequence survives a restart.
	db, err = state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err = permit.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if seq, _ := s.Seq(); seq != 1 {
		t.Errorf("seq after reopen = %d", seq)
	}
	if err := s.Apply(&permit.Batch{Seq: 2, Changes: []permit.Change{product("x")}}); err != nil {
		t.Errorf("next batch after reopen: %v", err)
	}
}

// TestPlateChanges: users change plates themselves at any time (003), so
// a changed permit must leave its old plates and reach its new ones.
func TestPlateChanges(t *testing.T) {
	s, _ := permittest.Store(t, product("m"), pput("p1", "m", "t", "AB12345", "CD12345"),
		pput("p2", "m", "u", "AB12345"),
		permit.Change{Op: permit.Put, Account: &permit.Account{ID: "a1", Kind: permit.Personal, Plates: []string{"AB12345"}}})
	if got := lookup(t, s, "AB12345"); !slices.Equal(got, []string{"acct:a1", "p1/t", "p2/u"}) {
		t.Fatalf("AB12345 -> %v", got)
	}
	apply := func(seq uint64, cs ...permit.Change) {
		t.Helper()
		if err := s.Apply(&permit.Batch{Seq: seq, Changes: cs}); err != nil {
			t.Fatal(err)
		}
	}
	apply(2, pput("p1", "m", "t2", "EF12345", "CD12345"))
	if got := lookup(t, s, "AB12345"); !slices.Equal(got, []string{"acct:a1", "p2/u"}) {
		t.Errorf("after p1 dropped AB12345: %v", got)
	}
	if got := lookup(t, s, "EF12345"); !slices.Equal(got, []string{"p1/t2"}) {
		t.Errorf("new plate: %v", got)
	}
	apply(3, pdel("p2"), pdel("never-existed"),
		permit.Change{Op: permit.Delete, Account: &permit.Account{ID: "a1"}})
	if got := lookup(t, s, "AB12345"); got != nil {
		t.Errorf("after deletes: %v", got)
	}
	s.View(func(v *permit.View) error {
		c := v.Counts()
		if c.Permits != 1 || c.Accounts != 0 || c.Plates != 2 || c.Products != 1 {
			t.Errorf("counts %+v", c)
		}
		if p, _ := v.Permit("p1"); p == nil || p.Tenant != "t2" {
			t.Errorf("Permit(p1) = %+v", p)
		}
		return nil
	})
}

// set builds a data set where every permit's tenant is tag: a view that
// mixed two sets would show two tags.
func set(tag string, n int) []permit.Change {
	cs := []permit.Change{product("m")}
	for i := range n {
		cs = append(cs, pput(fmt.Sprintf("p%05d", i), "m", tag, fmt.Sprintf("AA%05d", i), fmt.Sprintf("BB%05d", i)))
	}
	return cs
}

// TestSnapshotSwap loads a snapshot while readers keep deciding: every
// view sees the old set whole or the new set whole, never a mix, and the
// old set until the swap.
func TestSnapshotSwap(t *testing.T) {
	const n = 3000
	s, _ := permittest.Store(t, set("old", n)...)
	var stop atomic.Bool
	var views, mixed, sawNew atomic.Int64
	var wg sync.WaitGroup
	reader := func(seed int) {
		defer wg.Done()
		for i := seed; !stop.Load(); i += 7 {
			err := s.View(func(v *permit.View) error {
				seen := map[string]bool{}
				for k := range 5 {
					p := fmt.Sprintf("AA%05d", (i+k*611)%n)
					hs, err := v.Holders(plate.ConfusionKey(p))
					if err != nil {
						return err
					}
					if len(hs) != 1 {
						return fmt.Errorf("%s has %d holders", p, len(hs))
					}
					seen[hs[0].Permit.Tenant] = true
				}
				if len(seen) > 1 {
					mixed.Add(1)
				}
				if seen["new"] {
					sawNew.Add(1)
				}
				views.Add(1)
				return nil
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}
	for i := range 2 {
		wg.Add(1)
		go reader(i)
	}

	sn, err := s.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewSnapshot(); !errors.Is(err, permit.ErrLoading) {
		t.Errorf("second snapshot: %v", err)
	}
	cs := set("new", n)
	for lo := 0; lo < len(cs); lo += 500 {
		if err := sn.Add(cs[lo:min(lo+500, len(cs))]); err != nil {
			t.Fatal(err)
		}
	}
	if sawNew.Load() != 0 {
		t.Fatal("a view saw the snapshot before the swap")
	}
	if got := lookup(t, s, "AA00007"); !slices.Equal(got, []string{"p00007/old"}) {
		t.Fatalf("before the swap: %v", got)
	}
	if err := sn.Commit(42); err != nil {
		t.Fatal(err)
	}
	// Let the readers see the new set for a while.
	for deadline := time.Now().Add(5 * time.Second); sawNew.Load() < 20 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if mixed.Load() != 0 {
		t.Errorf("%d of %d views mixed the old and new sets", mixed.Load(), views.Load())
	}
	if got := lookup(t, s, "AA00007"); !slices.Equal(got, []string{"p00007/new"}) {
		t.Errorf("after the swap: %v", got)
	}
	if seq, _ := s.Seq(); seq != 42 {
		t.Errorf("seq = %d, want the snapshot's 42", seq)
	}
	// Deltas go on from the snapshot, on the new set.
	if err := s.Apply(&permit.Batch{Seq: 43, Changes: []permit.Change{pput("p00007", "m", "delta", "CC00007")}}); err != nil {
		t.Fatal(err)
	}
	if got := lookup(t, s, "CC00007"); !slices.Equal(got, []string{"p00007/delta"}) {
		t.Errorf("delta after the swap: %v", got)
	}
	if got := lookup(t, s, "AA00007"); got != nil {
		t.Errorf("old plate after the delta: %v", got)
	}
	s.View(func(v *permit.View) error {
		if c := v.Counts(); c.Permits != n || c.Plates != 2*n-1 {
			t.Errorf("counts after swap and delta: %+v", c)
		}
		return nil
	})
	t.Logf("%d views during the load, none mixed", views.Load())
}

func TestSnapshotRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cs   []permit.Change
		want string
	}{
		{"duplicate permit", []permit.Change{product("m"), pput("p1", "m", "t", "AB12345"), pput("p1", "m", "t", "CD12345")}, `permit "p1" is in the snapshot twice`},
		{"unknown product", []permit.Change{pput("p1", "x", "t", "AB12345")}, `product "x"`},
		{"delete in a snapshot", []permit.Change{pdel("p1")}, "a snapshot holds puts only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := permittest.Store(t, product("m"), pput("live", "m", "t", "LV12345"))
			sn, err := s.NewSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			err = sn.Add(tc.cs)
			if err == nil {
				err = sn.Commit(9)
			} else {
				sn.Abort()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if got := lookup(t, s, "LV12345"); !slices.Equal(got, []string{"live/t"}) {
				t.Errorf("live set after a refused snapshot: %v", got)
			}
			if seq, _ := s.Seq(); seq != 1 {
				t.Errorf("seq = %d", seq)
			}
			// A new snapshot can start.
			sn, err = s.NewSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			sn.Abort()
		})
	}
}

// TestOpenDropsUnfinishedSnapshot: a snapshot cut short by a restart is
// removed; the live set stays.
func TestOpenDropsUnfinishedSnapshot(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := permit.Open(db.DB)
	s.Apply(&permit.Batch{Seq: 1, Changes: set("old", 10)})
	sn, _ := s.NewSnapshot()
	if err := sn.Add(set("new", 10)); err != nil {
		t.Fatal(err)
	}
	dir := db.Dir()
	db.Close()
	db, err = state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err = permit.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if got := lookup(t, s, "AA00003"); !slices.Equal(got, []string{"p00003/old"}) {
		t.Errorf("after reopen: %v", got)
	}
	gens := 0
	db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(permit.RootBucket).ForEach(func(k, v []byte) error {
			if v == nil && k[0] == 'g' {
				gens++
			}
			return nil
		})
	})
	if gens != 1 {
		t.Errorf("%d generations after reopen, want 1", gens)
	}
}
