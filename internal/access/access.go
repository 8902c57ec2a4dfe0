// Package access runs the decision at a lane as one step: it reads the
// permit data and the vehicles inside, decides (internal/decide), and
// records the presence change, all in one bbolt write transaction. bbolt
// has one writer at a time, so the entrance and exit lanes of a facility
// deciding at the same moment cannot both take a permit's last place,
// and a crash leaves the decision's presence change whole or not at all.
// A Reservation keeps what a decision changed so that it can be undone
// (Release) when the vehicle does not go through. It also builds each
// lane's decide.Lane from the config.
//
// This package must not touch hardware or the network: opening the
// barrier and uploading the passage are the caller's, after Pass returns.
package access

import (
	"fmt"
	"time"

	"anprd/internal/config"
	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/presence"
)

// Desk decides for the lanes of one box.
type Desk struct {
	permits  *permit.Store
	presence *presence.Store
	lanes    map[string]*decide.Lane
}

// New returns a desk for lanes, reading permits and recording presence.
func New(permits *permit.Store, pres *presence.Store, lanes []decide.Lane) (*Desk, error) {
	d := &Desk{permits: permits, presence: pres, lanes: map[string]*decide.Lane{}}
	for i := range lanes {
		l := lanes[i]
		if err := l.Policy.Validate(); err != nil {
			return nil, fmt.Errorf("access: lane %s: %w", l.ID, err)
		}
		if l.Location == nil {
			return nil, fmt.Errorf("access: lane %s: no time zone", l.ID)
		}
		if _, dup := d.lanes[l.ID]; dup {
			return nil, fmt.Errorf("access: lane %s given twice", l.ID)
		}
		d.lanes[l.ID] = &l
	}
	return d, nil
}

// Lane returns lane id's settings.
func (d *Desk) Lane(id string) (*decide.Lane, bool) {
	l, ok := d.lanes[id]
	return l, ok
}

// Pass decides r at lane and records its presence change, in one write
// transaction. r.Time is the time of the passage (the caller's clock).
func (d *Desk) Pass(lane string, r decide.Read) (decide.Decision, error) {
	res, err := d.Reserve(lane, r)
	if err != nil {
		return decide.Decision{}, err
	}
	return res.Decision, nil
}

// Reservation is a decision whose presence change is recorded while its
// vehicle is still at the barrier. Recording at the decision, in the
// transaction that counted, is what keeps a permit's limit under
// concurrent lanes: the place is taken from that moment, so a second car
// of the permit at another lane is refused while the first is still in
// front of the arm. If the vehicle then does not go through (it backs
// out, the barrier fails), Release undoes the change.
type Reservation struct {
	Decision decide.Decision
	facility string
	entered  *presence.Vehicle // the record an entry made
	replaced *presence.Vehicle // the record of the same plate the entry replaced
	left     *presence.Vehicle // the record an exit removed
	journal  passage.ID        // its passage's journal entry, if journaled
	undone   bool              // Release undid the change
}

// Presence is the presence change the reservation made, for the passage,
// or nil when it made none or Release undid it.
func (r *Reservation) Presence() *passage.Presence {
	if r == nil || r.undone {
		return nil
	}
	return passage.PresenceOf(r.facility, r.Decision)
}

// Changed reports whether the decision changed presence, so that there
// is something to release.
func (r *Reservation) Changed() bool { return r != nil && (r.entered != nil || r.left != nil) }

// Reserve decides r at lane and records its presence change in one write
// transaction, like Pass, and returns what Release needs to undo it.
func (d *Desk) Reserve(lane string, r decide.Read) (*Reservation, error) {
	return d.reserve(lane, r, nil)
}

func (d *Desk) reserve(lane string, r decide.Read, draft Draft) (*Reservation, error) {
	l, ok := d.lanes[lane]
	if !ok {
		return nil, fmt.Errorf("access: unknown lane %q", lane)
	}
	res := &Reservation{facility: l.Facility}
	err := d.presence.Update(func(tx *presence.Tx) error {
		*res = Reservation{facility: l.Facility}
		v, err := d.permits.ViewTx(tx.Bolt())
		if err != nil {
			return err
		}
		dec, err := decide.Decide(r, l, v, tx)
		if err != nil {
			return err
		}
		res.Decision = dec
		if dec.Leave != "" {
			if res.left, err = tx.Exit(l.Facility, dec.Leave); err != nil {
				return err
			}
		}
		if dec.Enter != nil {
			if res.replaced, err = tx.Inside(l.Facility, dec.Enter.Plate); err != nil {
				return err
			}
			res.entered = dec.Enter
			if err := tx.Enter(dec.Enter); err != nil {
				return err
			}
		}
		if draft != nil {
			return journalDecision(tx.Bolt(), res, draft)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("access: lane %s: %w", lane, err)
	}
	return res, nil
}

// Release undoes a reservation whose vehicle did not go through, in one
// write transaction: an entry's record is removed (and the record it
// replaced put back), an exit's record is put back. It changes nothing,
// and reports false, when presence has moved on since (the plate left,
// came in again or was corrected): the newer record is the truth. A
// journaled passage's entry is marked in the same transaction: the
// vehicle did not go through.
func (d *Desk) Release(res *Reservation) (bool, error) {
	if res == nil || (!res.Changed() && res.journal.IsZero()) {
		return false, nil
	}
	done := false
	err := d.presence.Update(func(tx *presence.Tx) error {
		var err error
		if done, err = d.release(tx, res); err != nil {
			return err
		}
		return releaseJournal(tx.Bolt(), res, done)
	})
	if err != nil {
		return false, fmt.Errorf("access: release: %w", err)
	}
	res.undone = done
	return done, nil
}

// release undoes res's presence change in tx, and says whether it did.
func (d *Desk) release(tx *presence.Tx, res *Reservation) (bool, error) {
	switch {
	case res.entered != nil:
		cur, err := tx.Inside(res.facility, res.entered.Plate)
		if err != nil || cur == nil || !sameRecord(cur, res.entered) {
			return false, err
		}
		if _, err := tx.Exit(res.facility, cur.Plate); err != nil {
			return false, err
		}
		if res.replaced != nil {
			if err := tx.Enter(res.replaced); err != nil {
				return false, err
			}
		}
		return true, nil
	case res.left != nil:
		cur, err := tx.Inside(res.facility, res.left.Plate)
		if err != nil || cur != nil {
			return false, err
		}
		return true, tx.Enter(res.left)
	}
	return false, nil
}

// sameRecord reports whether a stored record is the one a reservation
// made (a JSON round trip loses nothing these compare).
func sameRecord(a, b *presence.Vehicle) bool {
	return a.Plate == b.Plate && a.Entered.Equal(b.Entered) && a.Lane == b.Lane && a.Source == b.Source &&
		a.Permit == b.Permit && a.Pool == b.Pool && a.Account == b.Account
}

// Peek decides r at lane without recording anything, in a read
// transaction: what Pass would say now. For tools and benchmarks.
func (d *Desk) Peek(lane string, r decide.Read) (decide.Decision, error) {
	l, ok := d.lanes[lane]
	if !ok {
		return decide.Decision{}, fmt.Errorf("access: unknown lane %q", lane)
	}
	var dec decide.Decision
	err := d.presence.View(func(tx *presence.Tx) error {
		v, err := d.permits.ViewTx(tx.Bolt())
		if err != nil {
			return err
		}
		dec, err = decide.Decide(r, l, v, tx)
		return err
	})
	return dec, err
}

// Expire removes vehicles that have been inside longer than maxStay at
// now, so they no longer count, and returns them for the log.
func (d *Desk) Expire(now time.Time, maxStay time.Duration) ([]*presence.Vehicle, error) {
	return d.presence.Expire(now.Add(-maxStay))
}

// Lanes builds each configured lane's decision settings: its kind from
// direction and mode, its policy from the kind's default and the lane's
// overrides, and the site's access rules. cfg must have passed Validate.
func Lanes(cfg *config.Config) ([]decide.Lane, error) {
	a := cfg.Access
	out := make([]decide.Lane, 0, len(cfg.Lanes))
	for i, lc := range cfg.Lanes {
		kind := decide.Entrance
		switch {
		case lc.Direction == config.DirectionExit && lc.Mode == config.ModeFreeFlow:
			kind = decide.FreeFlowExit
		case lc.Direction == config.DirectionExit:
			kind = decide.Exit
		case lc.Mode == config.ModeFreeFlow:
			kind = decide.FreeFlowEntrance
		}
		ov := map[decide.Class]decide.Action{}
		for c, act := range lc.Policy.Overrides() {
			ov[decide.Class(c)] = decide.Action(act)
		}
		pol, err := decide.DefaultPolicy(kind).With(ov)
		if err != nil {
			return nil, fmt.Errorf("lanes[%d].policy: %w", i, err)
		}
		l := decide.Lane{
			ID: lc.ID, Kind: kind, Facility: a.Facility, Zone: lc.Zone, Location: cfg.Site.Location,
			Policy: pol, AntiPassback: decide.AntiPassback(a.AntiPassback), MaxStay: time.Duration(a.MaxStay),
		}
		if a.MinConfidence != nil {
			l.MinConfidence = float32(*a.MinConfidence)
		}
		if a.NearMatch != nil {
			l.Fuzzy = *a.NearMatch
		}
		if a.NearMatchConfidence != nil {
			l.FuzzyMinConfidence = float32(*a.NearMatchConfidence)
		}
		if l.Location == nil {
			return nil, fmt.Errorf("site.timezone: not loaded; Validate the config first")
		}
		out = append(out, l)
	}
	return out, nil
}
