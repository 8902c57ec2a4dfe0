package daemon

import (
	"testing"
	"time"

	"anprd/internal/access"
	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/presence"
	"anprd/internal/state"

	"github.com/rs/zerolog"
)

// TestJournalReplayedAtStart: a passage left in the journal by a crash
// (a vehicle let in at the decision, nothing after) is in the outbox once
// the daemon is built, before any lane runs, saying that whether the
// vehicle passed is unknown; the journal is empty, the vehicle's presence
// entry stands, and a second start adds nothing.
func TestJournalReplayedAtStart(t *testing.T) {
	cfg := testConfig(t)
	id := passage.ID{}
	func() {
		db, err := state.Open(cfg.State.Dir, state.Migrations)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		st, err := permit.Open(db.DB)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(&permit.Batch{Seq: 1, Changes: []permit.Change{{Op: permit.Put, Facility: &permit.Facility{ID: "oslo-p1"}}}}); err != nil {
			t.Fatal(err)
		}
		pres, err := presence.Open(db.DB)
		if err != nil {
			t.Fatal(err)
		}
		pol, _ := decide.DefaultPolicy(decide.Entrance).With(map[decide.Class]decide.Action{decide.Unregistered: decide.OpenCharge})
		desk, err := access.New(st, pres, []decide.Lane{{ID: "in-1", Kind: decide.Entrance, Facility: "oslo-p1",
			Location: time.UTC, Policy: pol, MaxStay: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		id = new(passage.Generator).New(now)
		_, err = desk.ReserveJournal("in-1", decide.Read{Plate: "EL43210", Conf: 0.97, Time: now}, func(d decide.Decision) passage.Passage {
			p := passage.Passage{ID: id, Site: "oslo-p1", Device: "box-1", Lane: "in-1", Direction: "entry", Kind: passage.Vehicle,
				Time: now, Read: &passage.Read{Plate: "EL43210", Conf: 0.97}, Gate: passage.Gate{Action: passage.Opened},
				Timings: passage.Timings{Decided: now}}
			p.Decision, p.Session = passage.FromDecision(d)
			return p
		})
		if err != nil {
			t.Fatal(err)
		}
	}()
	for start := range 2 {
		d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.link.outbox.Get(id)
		if err != nil || got == nil {
			t.Fatalf("start %d: journaled passage not in the outbox: %v, %v", start, got, err)
		}
		if p := got.Passage; !p.Gate.PassedUnknown || p.Gate.Passed || p.Presence == nil || p.Presence.Enter.Plate != "EL43210" {
			t.Errorf("start %d: recovered passage gate %+v presence %+v", start, p.Gate, p.Presence)
		}
		if es, err := access.Pending(d.db.DB); err != nil || len(es) != 0 {
			t.Errorf("start %d: journal %v, %v", start, es, err)
		}
		if s, _ := d.link.outbox.Stats(); s.Passages != 1 {
			t.Errorf("start %d: outbox holds %d passages, want 1", start, s.Passages)
		}
		if vs, err := d.presence.List("oslo-p1"); err != nil || len(vs) != 1 {
			t.Errorf("start %d: inside %v, %v; the entry stands", start, vs, err)
		}
		d.Close()
	}
}
