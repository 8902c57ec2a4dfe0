// Package presence keeps the vehicles inside each facility: when each
// came in, by which lane, and which permit, pool or account it counts
// against, so that a permit's concurrency limit ("the first car to drive
// in must leave before the permit is valid for another car", 004) can be
// checked at the next entrance. It lives in the daemon's bbolt database
// and so survives restarts; technicians and the central system correct it
// (remove, clear, add), and vehicles older than the maximum stay stop
// counting, so a missed exit read does not hold a permit for ever.
//
// Counting and recording happen in one write transaction (Store.Update):
// bbolt runs one writer at a time, so two lanes deciding at the same
// moment cannot both take a permit's last place.
//
// This package must not decide: it does not know permits, policies or
// anti-passback, and it never reads the clock.
package presence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"anprd/internal/plate"

	bolt "go.etcd.io/bbolt"
)

// Buckets, made by migration 3 in internal/state.
var (
	RootBucket    = []byte("presence")
	vehBucket     = []byte("vehicles") // facility 0 confusion key 0 plate -> Vehicle (codec.go)
	countedBucket = []byte("counted")  // kind id 0 facility 0 plate -> entry time (unix ns)
)

// Kind is what a vehicle counts against.
type Kind byte

const (
	Permit  Kind = 'p'
	Pool    Kind = 'o'
	Account Kind = 'a'
)

// Ref names one permit, pool or account.
type Ref struct {
	Kind Kind
	ID   string
}

// Source says who recorded a vehicle.
type Source string

const (
	FromLane       Source = "lane"       // a decision at one of this box's lanes
	FromCorrection Source = "correction" // a technician or the central system
	FromPeer       Source = "peer"       // another box of the site
)

// Vehicle is one vehicle inside a facility.
type Vehicle struct {
	Facility string    `json:"facility"`
	Plate    string    `json:"plate"`
	Entered  time.Time `json:"entered"`
	Lane     string    `json:"lane,omitempty"`
	// Class is the entry's classification, carried to the exit.
	Class string `json:"class,omitempty"`
	// Permit, Pool and Account are what the vehicle counts against.
	Permit  string `json:"permit,omitempty"`
	Pool    string `json:"pool,omitempty"`
	Account string `json:"account,omitempty"`
	// NotCounted: the vehicle came in on the short-term tariff (its permit
	// was in use, say); Permit, Pool and Account only say which it was.
	NotCounted bool     `json:"not_counted,omitempty"`
	Source     Source   `json:"source"`
	Flags      []string `json:"flags,omitempty"`
}

// Refs lists what v counts against.
func (v *Vehicle) Refs() []Ref {
	if v.NotCounted {
		return nil
	}
	var rs []Ref
	if v.Permit != "" {
		rs = append(rs, Ref{Permit, v.Permit})
	}
	if v.Pool != "" {
		rs = append(rs, Ref{Pool, v.Pool})
	}
	if v.Account != "" {
		rs = append(rs, Ref{Account, v.Account})
	}
	return rs
}

func (v *Vehicle) validate() error {
	switch {
	case v.Facility == "" || bytes.IndexByte([]byte(v.Facility), 0) >= 0:
		return fmt.Errorf("presence: facility %q is empty or has a NUL", v.Facility)
	case v.Plate == "" || plate.Normalize(v.Plate) != v.Plate:
		return fmt.Errorf("presence: plate %q is not a normalised plate", v.Plate)
	case v.Entered.IsZero():
		return errors.New("presence: entry time is required")
	}
	for _, r := range v.Refs() {
		if bytes.IndexByte([]byte(r.ID), 0) >= 0 {
			return fmt.Errorf("presence: id %q has a NUL", r.ID)
		}
	}
	return nil
}

// Store is the presence data in the daemon's database.
type Store struct{ db *bolt.DB }

// Open uses the presence buckets of db, which migrations must have made.
func Open(db *bolt.DB) (*Store, error) {
	err := db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(RootBucket)
		if root == nil || root.Bucket(vehBucket) == nil || root.Bucket(countedBucket) == nil {
			return errors.New("presence: buckets missing; the state migrations have not run")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Tx is presence in one bbolt transaction.
type Tx struct {
	tx       *bolt.Tx
	root     *bolt.Bucket
	vehicles *bolt.Bucket
	counted  *bolt.Bucket // opened when first needed
}

func wrap(tx *bolt.Tx) *Tx {
	root := tx.Bucket(RootBucket)
	return &Tx{tx: tx, root: root, vehicles: root.Bucket(vehBucket)}
}

// countedB is the counted bucket; a decision for a plate nobody
// registered never opens it.
func (t *Tx) countedB() *bolt.Bucket {
	if t.counted == nil {
		t.counted = t.root.Bucket(countedBucket)
	}
	return t.counted
}

// Update runs fn in one write transaction: what fn reads and what it
// changes are one atomic step, the rest of the daemon's writers wait.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(wrap(tx)) })
}

// View runs fn in a read transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(wrap(tx)) })
}

// Bolt is the underlying transaction, for reading other data (permits) in
// the same step.
func (t *Tx) Bolt() *bolt.Tx { return t.tx }

func vehKey(facility, p string) []byte {
	k := make([]byte, 0, len(facility)+2*len(p)+2)
	k = append(k, facility...)
	k = append(k, 0)
	k = append(k, plate.ConfusionKey(p)...)
	k = append(k, 0)
	return append(k, p...)
}

func countedKey(r Ref, facility, p string) []byte {
	k := make([]byte, 0, 1+len(r.ID)+len(facility)+len(p)+2)
	k = append(k, byte(r.Kind))
	k = append(k, r.ID...)
	k = append(k, 0)
	k = append(k, facility...)
	k = append(k, 0)
	return append(k, p...)
}

// Inside returns the vehicle with plate inside facility, or nil.
func (t *Tx) Inside(facility, p string) (*Vehicle, error) {
	k := vehKey(facility, p)
	b := t.vehicles.Get(k)
	if b == nil {
		return nil, nil
	}
	return decode(k, b)
}

// Confusable returns the vehicles inside facility whose plates have the
// plate.ConfusionKey key: the plate read and those it could be confused
// with.
func (t *Tx) Confusable(facility, key string) ([]*Vehicle, error) {
	prefix := make([]byte, 0, len(facility)+len(key)+2)
	prefix = append(append(append(append(prefix, facility...), 0), key...), 0)
	var out []*Vehicle
	c := t.vehicles.Cursor()
	for k, b := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, b = c.Next() {
		v, err := decode(k, b)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Count is the number of vehicles counted against r that entered at or
// after since (older ones are past the maximum stay), leaving out the
// vehicle with plate p in facility: a car coming in again after a missed
// exit read does not count against itself.
func (t *Tx) Count(r Ref, since time.Time, facility, p string) (int, error) {
	prefix := append(append([]byte{byte(r.Kind)}, r.ID...), 0)
	self := countedKey(r, facility, p)
	n := 0
	c := t.countedB().Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) != 8 {
			return 0, errors.New("presence: damaged count entry")
		}
		if bytes.Equal(k, self) || time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(since) {
			continue
		}
		n++
	}
	return n, nil
}

// Enter records v inside its facility, replacing any record of the same
// plate there (a car seen entering twice is inside once).
func (t *Tx) Enter(v *Vehicle) error {
	if err := v.validate(); err != nil {
		return err
	}
	if _, err := t.Exit(v.Facility, v.Plate); err != nil {
		return err
	}
	if err := t.vehicles.Put(vehKey(v.Facility, v.Plate), encode(v)); err != nil {
		return err
	}
	at := binary.BigEndian.AppendUint64(nil, uint64(v.Entered.UnixNano()))
	for _, r := range v.Refs() {
		if err := t.countedB().Put(countedKey(r, v.Facility, v.Plate), at); err != nil {
			return err
		}
	}
	return nil
}

// Exit removes the vehicle with plate p from facility and returns it, or
// nil if it was not inside.
func (t *Tx) Exit(facility, p string) (*Vehicle, error) {
	k := vehKey(facility, p)
	b := t.vehicles.Get(k)
	if b == nil {
		return nil, nil
	}
	v, err := decode(k, b)
	if err != nil {
		return nil, err
	}
	for _, r := range v.Refs() {
		if err := t.countedB().Delete(countedKey(r, v.Facility, v.Plate)); err != nil {
			return nil, err
		}
	}
	return v, t.vehicles.Delete(k)
}

// List returns the vehicles inside facility, or in every facility when
// facility is "".
func (t *Tx) List(facility string) ([]*Vehicle, error) {
	var prefix []byte
	if facility != "" {
		prefix = append([]byte(facility), 0)
	}
	var out []*Vehicle
	c := t.vehicles.Cursor()
	for k, b := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, b = c.Next() {
		v, err := decode(k, b)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Expire removes the vehicles that entered before cutoff (now less the
// maximum stay) and returns them, so the caller can report each.
func (t *Tx) Expire(cutoff time.Time) ([]*Vehicle, error) {
	all, err := t.List("")
	if err != nil {
		return nil, err
	}
	var out []*Vehicle
	for _, v := range all {
		if v.Entered.Before(cutoff) {
			if _, err := t.Exit(v.Facility, v.Plate); err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// Clear removes every vehicle of facility and returns how many there were.
func (t *Tx) Clear(facility string) (int, error) {
	vs, err := t.List(facility)
	if err != nil {
		return 0, err
	}
	for _, v := range vs {
		if _, err := t.Exit(v.Facility, v.Plate); err != nil {
			return 0, err
		}
	}
	return len(vs), nil
}

// Remove is a correction: plate p is not inside facility (its exit was
// missed). It returns the record removed, or nil.
func (s *Store) Remove(facility, p string) (*Vehicle, error) {
	var v *Vehicle
	err := s.Update(func(t *Tx) (err error) {
		v, err = t.Exit(facility, plate.Normalize(p))
		return err
	})
	return v, err
}

// Clear is a correction: facility is empty (e.g. at night after a count).
func (s *Store) Clear(facility string) (int, error) {
	var n int
	err := s.Update(func(t *Tx) (err error) {
		n, err = t.Clear(facility)
		return err
	})
	return n, err
}

// Add is a correction: v is inside (its entry was missed). It is recorded
// as given, without checking limits: whoever corrects knows the car is
// there, and it must count.
func (s *Store) Add(v Vehicle) error {
	v.Plate = plate.Normalize(v.Plate)
	if v.Source == "" {
		v.Source = FromCorrection
	}
	return s.Update(func(t *Tx) error { return t.Enter(&v) })
}

// Expire removes the vehicles that entered before cutoff.
func (s *Store) Expire(cutoff time.Time) ([]*Vehicle, error) {
	var out []*Vehicle
	err := s.Update(func(t *Tx) (err error) {
		out, err = t.Expire(cutoff)
		return err
	})
	return out, err
}

// List returns the vehicles inside facility ("" for all).
func (s *Store) List(facility string) ([]*Vehicle, error) {
	var out []*Vehicle
	err := s.View(func(t *Tx) (err error) {
		out, err = t.List(facility)
		return err
	})
	return out, err
}
