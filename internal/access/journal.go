package access

import (
	"encoding/json"
	"errors"
	"fmt"

	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/presence"

	bolt "go.etcd.io/bbolt"
)

// The journal keeps every passage in hand from its decision until the
// outbox has recorded it, so that a crash in between (the vehicle going
// through, the wait for its evidence images) loses no passage:
//
//	journal  passage id (16 bytes) -> Entry (JSON)
//
// An entry is written in the decision's own transaction (ReserveJournal),
// marked when the vehicle is known not to have gone through (Release, in
// its transaction), and deleted in the transaction in which the outbox
// records the passage (Forget, which the outbox calls inside Record). The
// passage's ID is made before the decision and is the key, so the lane's
// own record and a replay after a crash are one passage: the outbox keeps
// a passage once by ID. Whatever is left at start-up is a passage whose
// outcome anprd never saw; Replay hands each to the outbox as such, before
// the lanes start. Made by migration 6 in internal/state.
var JournalBucket = []byte("journal")

// Entry is a passage in hand as the journal keeps it.
type Entry struct {
	// Passage is the passage as the lane knew it at the decision (read,
	// decision, what the barrier was told, trigger, first read and
	// decision timings, the presence change), with its ID.
	Passage passage.Passage `json:"passage"`
	// NotThrough: the vehicle is known not to have gone through (it
	// backed out, the barrier failed) and its presence change was undone
	// where presence had not moved on.
	NotThrough bool `json:"not_through,omitempty"`
}

// Draft makes the passage the journal keeps for decision d. It is called
// inside the decision's write transaction, so it must be quick and must
// not touch the desk.
type Draft func(d decide.Decision) passage.Passage

// ErrNoJournal is returned when the state database has no journal bucket
// (its migrations have not run).
var ErrNoJournal = errors.New("access: no journal bucket; the state migrations have not run")

func journal(tx *bolt.Tx) (*bolt.Bucket, error) {
	b := tx.Bucket(JournalBucket)
	if b == nil {
		return nil, ErrNoJournal
	}
	return b, nil
}

func putEntry(tx *bolt.Tx, e *Entry) error {
	if e.Passage.ID.IsZero() {
		return errors.New("access: journal: a passage without an id")
	}
	b, err := journal(tx)
	if err != nil {
		return err
	}
	js, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("access: journal: %w", err)
	}
	return b.Put(e.Passage.ID[:], js)
}

// ReserveJournal decides r at lane and records its presence change like
// Reserve, and journals the passage draft makes of the decision (with
// the presence change) in the same transaction: from the moment the
// decision counts, its passage survives a crash. The passage's ID must be
// set.
func (d *Desk) ReserveJournal(lane string, r decide.Read, draft Draft) (*Reservation, error) {
	return d.reserve(lane, r, draft)
}

// journalDecision is the step of the decision's transaction that writes
// the journal entry.
func journalDecision(tx *bolt.Tx, res *Reservation, draft Draft) error {
	p := draft(res.Decision)
	p.Presence = passage.PresenceOf(res.facility, res.Decision)
	if err := putEntry(tx, &Entry{Passage: p}); err != nil {
		return err
	}
	res.journal = p.ID
	return nil
}

// releaseJournal marks a reservation's journal entry: the vehicle did not
// go through; its presence change is gone if it was undone.
func releaseJournal(tx *bolt.Tx, res *Reservation, undone bool) error {
	if res.journal.IsZero() {
		return nil
	}
	b, err := journal(tx)
	if err != nil {
		return err
	}
	v := b.Get(res.journal[:])
	if v == nil {
		return nil // recorded already
	}
	var e Entry
	if err := json.Unmarshal(v, &e); err != nil {
		return fmt.Errorf("access: journal entry %s: %w", res.journal, err)
	}
	e.NotThrough = true
	if undone {
		e.Passage.Presence = nil
	}
	return putEntry(tx, &e)
}

// Journal keeps p, a passage in hand, in the journal until the outbox
// records it, replacing the entry of the same ID: a manual opening (which
// no decision made), or a passage whose vehicle is now known to have gone
// through. p carries its presence change; a later ReserveJournal with
// the same ID replaces the entry in turn.
func (d *Desk) Journal(p passage.Passage) error {
	return d.presence.Update(func(tx *presence.Tx) error {
		return putEntry(tx.Bolt(), &Entry{Passage: p})
	})
}

// Forget deletes passage id's journal entry. The outbox calls it inside
// the transaction that records the passage (and for a passage it already
// has), so that a passage is in the journal or in the outbox, never
// neither. A database without the journal has nothing to forget.
func Forget(tx *bolt.Tx, id passage.ID) error {
	b := tx.Bucket(JournalBucket)
	if b == nil {
		return nil
	}
	return b.Delete(id[:])
}

// Pending returns the journal's entries, in ID order. An entry that
// cannot be read is left where it is and named in the error; the others
// are returned all the same.
func Pending(db *bolt.DB) ([]Entry, error) {
	var out []Entry
	var bad []error
	err := db.View(func(tx *bolt.Tx) error {
		out, bad = nil, nil
		b, err := journal(tx)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				bad = append(bad, fmt.Errorf("access: journal entry %x: %w", k, err))
				return nil
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(bad...)
}

// Recovered is the passage of an entry anprd did not finish: what was
// known at the decision. A vehicle the barrier opened for and that was
// not seen through is recorded as not passed, with PassedUnknown set: it
// may have gone through. Its presence change stands — the car may be
// inside (at an exit: may have left) — so the permit's place stays taken
// until its exit or max stay rather than letting a second car of the
// permit in, and the passage carries the change for the site's other
// boxes. Everything else (turned away, free-flow, a tailgater already
// through, one known not to have gone through) is recorded as drafted.
func (e Entry) Recovered() passage.Passage {
	p := e.Passage
	if p.Gate.Action == passage.Opened && !p.Gate.Passed && !e.NotThrough {
		p.Gate.PassedUnknown = true
	}
	return p
}

// Replay hands every journal entry's recovered passage to record (the
// outbox's Record, which forgets the entry in its transaction), oldest
// first, and returns the passages it handed over. An entry that cannot be
// read, or that record refuses, stays in the journal for the next start;
// the error names each.
func Replay(db *bolt.DB, record func(passage.Passage) error) ([]passage.Passage, error) {
	es, err := Pending(db)
	if es == nil && err != nil {
		return nil, err
	}
	errs := []error{err}
	var out []passage.Passage
	for _, e := range es {
		p := e.Recovered()
		if err := record(p); err != nil {
			errs = append(errs, fmt.Errorf("access: journal: passage %s not recorded: %w", p.ID, err))
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}
