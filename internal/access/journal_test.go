package access_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"anprd/internal/access"
	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/permit/permittest"
	"anprd/internal/presence"
	"anprd/internal/state"

	bolt "go.etcd.io/bbolt"
)

// journalDesk is a real desk with one entrance that lets every readable
// car in (charged), and one exit.
func journalDesk(t *testing.T) (*access.Desk, *state.DB, *presence.Store) {
	t.Helper()
	st, db := permittest.Store(t, permit.Change{Op: permit.Put, Facility: &permit.Facility{ID: "f1"}})
	pres, err := presence.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := decide.DefaultPolicy(decide.Entrance).With(map[decide.Class]decide.Action{decide.Unregistered: decide.OpenCharge})
	desk, err := access.New(st, pres, []decide.Lane{
		{ID: "in-1", Kind: decide.Entrance, Facility: "f1", Location: time.UTC, Policy: in, MaxStay: time.Hour},
		{ID: "out-1", Kind: decide.Exit, Facility: "f1", Location: time.UTC, Policy: decide.DefaultPolicy(decide.Exit), MaxStay: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	return desk, db, pres
}

var journalT0 = time.Date(2026, 11, 24, 7, 41, 0, 0, time.UTC)

func draftFor(id passage.ID, lane string, action passage.GateAction) access.Draft {
	return func(d decide.Decision) passage.Passage {
		p := passage.Passage{ID: id, Site: "s", Device: "b", Lane: lane, Direction: "entry", Kind: passage.Vehicle,
			Time: journalT0, Read: &passage.Read{Plate: d.Plate}, Gate: passage.Gate{Action: action}}
		p.Decision, p.Session = passage.FromDecision(d)
		return p
	}
}

func pending(t *testing.T, db *state.DB) []access.Entry {
	t.Helper()
	es, err := access.Pending(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestJournalFollowsThePassage: the decision's transaction journals the
// passage with its presence change; Release marks it not through (and
// drops the change it undid); Forget, the outbox's step, removes it; a
// replayed entry says what is known.
func TestJournalFollowsThePassage(t *testing.T) {
	desk, db, _ := journalDesk(t)
	var ids passage.Generator
	a, b := ids.New(journalT0), ids.New(journalT0)
	resA, err := desk.ReserveJournal("in-1", decide.Read{Plate: "AB12345", Conf: 0.9, Time: journalT0}, draftFor(a, "in-1", passage.Opened))
	if err != nil {
		t.Fatal(err)
	}
	resB, err := desk.ReserveJournal("in-1", decide.Read{Plate: "CD12345", Conf: 0.9, Time: journalT0}, draftFor(b, "in-1", passage.Opened))
	if err != nil {
		t.Fatal(err)
	}
	es := pending(t, db)
	if len(es) != 2 || es[0].Passage.ID != a || es[0].NotThrough || es[0].Passage.Presence == nil ||
		es[0].Passage.Presence.Enter.Plate != "AB12345" || es[0].Passage.Decision.Action != decide.OpenCharge {
		t.Fatalf("journal after two decisions: %+v", es)
	}
	if p := resA.Presence(); p == nil || p.Enter.Plate != "AB12345" {
		t.Errorf("reservation's presence %+v", p)
	}
	// B backs out: its presence change is undone, its entry says so.
	if done, err := desk.Release(resB); err != nil || !done {
		t.Fatalf("Release = %v, %v", done, err)
	}
	if resB.Presence() != nil {
		t.Errorf("released reservation's presence %+v", resB.Presence())
	}
	es = pending(t, db)
	if !es[1].NotThrough || es[1].Passage.Presence != nil {
		t.Errorf("released entry %+v", es[1])
	}
	rec := es[1].Recovered()
	if rec.Gate.PassedUnknown || rec.Gate.Passed {
		t.Errorf("recovered released passage gate %+v: it is known not to have passed", rec.Gate)
	}
	rec = es[0].Recovered()
	if !rec.Gate.PassedUnknown || rec.Gate.Passed || rec.Validate() != nil {
		t.Errorf("recovered passage gate %+v: its passing is unknown (%v)", rec.Gate, rec.Validate())
	}
	// The outbox records A: Forget runs in its transaction.
	if err := db.Update(func(tx *bolt.Tx) error { return access.Forget(tx, a) }); err != nil {
		t.Fatal(err)
	}
	if es := pending(t, db); len(es) != 1 || es[0].Passage.ID != b {
		t.Errorf("journal after Forget: %+v", es)
	}
}

// TestRecoveredPassages: only a vehicle let in and not seen through is
// replayed as passed-unknown; what was known is kept.
func TestRecoveredPassages(t *testing.T) {
	for _, c := range []struct {
		name       string
		gate       passage.Gate
		notThrough bool
		unknown    bool
	}{
		{"let in, not seen through", passage.Gate{Action: passage.Opened}, false, true},
		{"let in, backed out", passage.Gate{Action: passage.Opened}, true, false},
		{"tailgater, through", passage.Gate{Action: passage.Opened, Passed: true}, false, false},
		{"turned away", passage.Gate{Action: passage.Kept}, false, false},
		{"free-flow", passage.Gate{Action: passage.NoBarrier, Passed: true}, false, false},
		{"barrier failed", passage.Gate{Action: passage.Failed, Fault: "jammed"}, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := access.Entry{Passage: passage.Passage{Gate: c.gate}, NotThrough: c.notThrough}.Recovered()
			want := c.gate
			want.PassedUnknown = c.unknown
			if p.Gate != want {
				t.Errorf("gate %+v, want %+v", p.Gate, want)
			}
		})
	}
}

// TestReplayKeepsWhatIsRefused: an entry the outbox refuses stays for
// the next start; a damaged one is named and left; the rest go.
func TestReplayKeepsWhatIsRefused(t *testing.T) {
	desk, db, _ := journalDesk(t)
	var ids passage.Generator
	var want []passage.ID
	for _, plate := range []string{"AB12345", "CD12345", "EF12345"} {
		id := ids.New(journalT0)
		want = append(want, id)
		if _, err := desk.ReserveJournal("in-1", decide.Read{Plate: plate, Conf: 0.9, Time: journalT0}, draftFor(id, "in-1", passage.Opened)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(access.JournalBucket).Put([]byte("damaged-key-16by"), []byte("{"))
	}); err != nil {
		t.Fatal(err)
	}
	full := errors.New("outbox full")
	recorded := map[passage.ID]int{}
	record := func(p passage.Passage) error {
		if p.ID == want[1] {
			return full
		}
		recorded[p.ID]++
		return db.Update(func(tx *bolt.Tx) error { return access.Forget(tx, p.ID) })
	}
	ps, err := access.Replay(db.DB, record)
	if !errors.Is(err, full) || !strings.Contains(err.Error(), "journal entry") || len(ps) != 2 {
		t.Fatalf("Replay = %d passages, %v", len(ps), err)
	}
	if recorded[want[0]] != 1 || recorded[want[2]] != 1 {
		t.Errorf("recorded %v", recorded)
	}
	es, _ := access.Pending(db.DB)
	if len(es) != 1 || es[0].Passage.ID != want[1] {
		t.Errorf("left in the journal: %+v", es)
	}
}

// TestManualJournal: a manual opening is journaled, and the decision for
// the vehicle through it replaces the entry (one passage, one ID).
func TestManualJournal(t *testing.T) {
	desk, db, _ := journalDesk(t)
	id := new(passage.Generator).New(journalT0)
	m := passage.Passage{ID: id, Site: "s", Device: "b", Lane: "in-1", Direction: "entry", Kind: passage.Manual, Time: journalT0,
		Manual: &passage.ManualOpen{Source: "button"}, Gate: passage.Gate{Action: passage.Opened}}
	if err := desk.Journal(m); err != nil {
		t.Fatal(err)
	}
	if es := pending(t, db); len(es) != 1 || es[0].Passage.Kind != passage.Manual || !es[0].Recovered().Gate.PassedUnknown {
		t.Fatalf("journal %+v", es)
	}
	_, err := desk.ReserveJournal("in-1", decide.Read{Plate: "AB12345", Conf: 0.9, Time: journalT0, Through: true}, func(d decide.Decision) passage.Passage {
		p := m
		p.Gate.Passed = true
		p.Decision, p.Session = passage.FromDecision(d)
		return p
	})
	if err != nil {
		t.Fatal(err)
	}
	es := pending(t, db)
	if len(es) != 1 || es[0].Passage.Decision == nil || es[0].Recovered().Gate.PassedUnknown || es[0].Passage.Presence == nil {
		t.Errorf("journal after the through-decision %+v", es)
	}
	if err := desk.Journal(passage.Passage{}); err == nil {
		t.Error("a passage without an id was journaled")
	}
}

// BenchmarkReserve: the decision's write transaction without and with
// its journal entry (the journal adds one JSON encoding and one put to
// a transaction that already writes presence and fsyncs).
func BenchmarkReserve(b *testing.B) {
	for _, journaled := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "journaled"}[journaled]
		b.Run(name, func(b *testing.B) {
			st, db := permittest.Store(b, permit.Change{Op: permit.Put, Facility: &permit.Facility{ID: "f1"}})
			pres, err := presence.Open(db.DB)
			if err != nil {
				b.Fatal(err)
			}
			in, _ := decide.DefaultPolicy(decide.Entrance).With(map[decide.Class]decide.Action{decide.Unregistered: decide.OpenCharge})
			desk, err := access.New(st, pres, []decide.Lane{{ID: "in-1", Kind: decide.Entrance, Facility: "f1", Location: time.UTC, Policy: in, MaxStay: time.Hour}})
			if err != nil {
				b.Fatal(err)
			}
			var ids passage.Generator
			for i := 0; b.Loop(); i++ {
				r := decide.Read{Plate: fmt.Sprintf("AB%05d", i), Conf: 0.9, Time: journalT0}
				if journaled {
					id := ids.New(journalT0)
					_, err = desk.ReserveJournal("in-1", r, draftFor(id, "in-1", passage.Opened))
					// The outbox forgets it soon after (its own transaction,
					// not timed here): the journal holds a few entries at most.
					b.StopTimer()
					if err == nil {
						err = db.Update(func(tx *bolt.Tx) error { return access.Forget(tx, id) })
					}
					b.StartTimer()
				} else {
					_, err = desk.Reserve("in-1", r)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
