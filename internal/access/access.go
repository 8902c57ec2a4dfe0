// Package access runs the decision at a lane as one step: it reads the
// permit data and the vehicles inside, decides (internal/decide), and
// records the presence change, all in one bbolt write transaction. bbolt
// has one writer at a time, so the entrance and exit lanes of a facility
// deciding at the same moment cannot both take a permit's last place,
// and a crash leaves the decision's presence change whole or not at all.
// It also builds each lane's decide.Lane from the config.
//
// This package must not touch hardware or the network: opening the
// barrier and uploading the passage are the caller's, after Pass returns.
package access

import (
	"fmt"
	"time"

	"anprd/internal/config"
	"anprd/internal/decide"
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
	l, ok := d.lanes[lane]
	if !ok {
		return decide.Decision{}, fmt.Errorf("access: unknown lane %q", lane)
	}
	var dec decide.Decision
	err := d.presence.Update(func(tx *presence.Tx) error {
		v, err := d.permits.ViewTx(tx.Bolt())
		if err != nil {
			return err
		}
		if dec, err = decide.Decide(r, l, v, tx); err != nil {
			return err
		}
		if dec.Leave != "" {
			if _, err := tx.Exit(l.Facility, dec.Leave); err != nil {
				return err
			}
		}
		if dec.Enter != nil {
			return tx.Enter(dec.Enter)
		}
		return nil
	})
	if err != nil {
		return decide.Decision{}, fmt.Errorf("access: lane %s: %w", lane, err)
	}
	return dec, nil
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
