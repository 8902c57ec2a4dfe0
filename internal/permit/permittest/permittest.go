// Package permittest has an in-memory stand-in for the permit store's
// read side (the answers of *permit.View, from plain maps) for decision
// tests, and a helper that opens a real store on a temporary database.
// It must not be imported outside tests.
package permittest

import (
	"errors"
	"testing"

	"anprd/internal/permit"
	"anprd/internal/plate"
	"anprd/internal/state"
)

// Mem is permit data in memory. Its zero value is empty; Apply fills it.
// Set Fail to make every read fail, to test how callers handle it.
type Mem struct {
	Fail error
	// Reads counts Holders and Blocked calls.
	Reads int

	facilities map[string]*permit.Facility
	products   map[string]*permit.Product
	pools      map[string]*permit.Pool
	closures   map[string]*permit.Closure
	blocks     map[string]*permit.Block
	permits    map[string]*permit.Permit
	accounts   map[string]*permit.Account
}

// New returns a Mem holding the records put by cs.
func New(cs ...permit.Change) (*Mem, error) {
	m := &Mem{}
	return m, m.Apply(cs...)
}

// Apply puts or deletes records, after validating each.
func (m *Mem) Apply(cs ...permit.Change) error {
	if m.permits == nil {
		m.facilities, m.products, m.pools = map[string]*permit.Facility{}, map[string]*permit.Product{}, map[string]*permit.Pool{}
		m.closures, m.blocks = map[string]*permit.Closure{}, map[string]*permit.Block{}
		m.permits, m.accounts = map[string]*permit.Permit{}, map[string]*permit.Account{}
	}
	for _, c := range cs {
		if err := c.Validate(); err != nil {
			return err
		}
		del := c.Op == permit.Delete
		switch {
		case c.Facility != nil:
			set(m.facilities, c.Facility.ID, c.Facility, del)
		case c.Product != nil:
			set(m.products, c.Product.ID, c.Product, del)
		case c.Pool != nil:
			set(m.pools, c.Pool.ID, c.Pool, del)
		case c.Closure != nil:
			set(m.closures, c.Closure.ID, c.Closure, del)
		case c.Block != nil:
			set(m.blocks, c.Block.Plate, c.Block, del)
		case c.Permit != nil:
			set(m.permits, c.Permit.ID, c.Permit, del)
		case c.Account != nil:
			set(m.accounts, c.Account.ID, c.Account, del)
		}
	}
	return nil
}

func set[T any](m map[string]*T, k string, v *T, del bool) {
	if del {
		delete(m, k)
	} else {
		m[k] = v
	}
}

// Holders implements decide.Store by scanning every record. As the real
// store's, the records come without their plates (the holder has the
// plate and its place).
func (m *Mem) Holders(key string) ([]permit.Holder, error) {
	m.Reads++
	if m.Fail != nil {
		return nil, m.Fail
	}
	var out []permit.Holder
	for _, p := range m.permits {
		for i, pl := range p.Plates {
			if plate.ConfusionKey(pl) == key {
				c := *p
				c.Plates = nil
				out = append(out, permit.Holder{Plate: pl, Pos: i, Permit: &c})
			}
		}
	}
	for _, a := range m.accounts {
		for i, pl := range a.Plates {
			if plate.ConfusionKey(pl) == key {
				c := *a
				c.Plates = nil
				out = append(out, permit.Holder{Plate: pl, Pos: i, Account: &c})
			}
		}
	}
	return out, nil
}

// Blocked implements decide.Store.
func (m *Mem) Blocked(p string) (*permit.Block, error) {
	m.Reads++
	if m.Fail != nil {
		return nil, m.Fail
	}
	return m.blocks[p], nil
}

// Facility implements decide.Store.
func (m *Mem) Facility(id string) *permit.Facility { return m.facilities[id] }

// Product implements decide.Store.
func (m *Mem) Product(id string) *permit.Product { return m.products[id] }

// Pool implements decide.Store.
func (m *Mem) Pool(id string) *permit.Pool { return m.pools[id] }

// Closures implements decide.Store.
func (m *Mem) Closures(facility string) []*permit.Closure {
	var out []*permit.Closure
	for _, c := range m.closures {
		if c.Facility == facility {
			out = append(out, c)
		}
	}
	return out
}

// ErrInjected is a failure to hand to Fail.
var ErrInjected = errors.New("permittest: injected failure")

// OpenState opens the daemon's database with all migrations in a
// temporary directory, closed when the test ends.
func OpenState(t testing.TB) *state.DB {
	t.Helper()
	db, err := state.Open(t.TempDir(), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Store opens a real permit store on a temporary database and applies cs
// as batch 1 (if any).
func Store(t testing.TB, cs ...permit.Change) (*permit.Store, *state.DB) {
	t.Helper()
	db := OpenState(t)
	s, err := permit.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) > 0 {
		if err := s.Apply(&permit.Batch{Seq: 1, Changes: cs}); err != nil {
			t.Fatal(err)
		}
	}
	return s, db
}
