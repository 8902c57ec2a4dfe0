package permit

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// tables are the small records (facilities, products, pools, closures),
// decoded once per commit and shared by every view of that commit: a
// decision then reads bbolt only for the plate and its holders.
type tables struct {
	ver        uint64
	facilities map[string]*Facility
	products   map[string]*Product
	pools      map[string]*Pool
	closures   map[string][]*Closure // by facility
	// blocks: the block list is not empty. Most decisions are then
	// spared opening its bucket.
	blocks bool
}

func loadTables(g *bolt.Bucket, ver uint64) (*tables, error) {
	t := &tables{ver: ver, facilities: map[string]*Facility{}, products: map[string]*Product{},
		pools: map[string]*Pool{}, closures: map[string][]*Closure{}}
	err := decodeAll(g.Bucket(facBucket), func(v []byte) error {
		f := new(Facility)
		if err := json.Unmarshal(v, f); err != nil {
			return err
		}
		t.facilities[f.ID] = f
		return nil
	})
	if err == nil {
		err = decodeAll(g.Bucket(prodBucket), func(v []byte) error {
			p := new(Product)
			if err := json.Unmarshal(v, p); err != nil {
				return err
			}
			t.products[p.ID] = p
			return nil
		})
	}
	if err == nil {
		err = decodeAll(g.Bucket(poolBucket), func(v []byte) error {
			p := new(Pool)
			if err := json.Unmarshal(v, p); err != nil {
				return err
			}
			t.pools[p.ID] = p
			return nil
		})
	}
	if err == nil {
		err = decodeAll(g.Bucket(closBucket), func(v []byte) error {
			c := new(Closure)
			if err := json.Unmarshal(v, c); err != nil {
				return err
			}
			t.closures[c.Facility] = append(t.closures[c.Facility], c)
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("permit: stored record: %w", err)
	}
	k, _ := g.Bucket(blockBucket).Cursor().First()
	t.blocks = k != nil
	return t, nil
}

func decodeAll(b *bolt.Bucket, fn func(v []byte) error) error {
	return b.ForEach(func(_, v []byte) error { return fn(v) })
}

// View is one consistent state of the permit data: the live generation as
// of the transaction it reads in. It must not be used after the
// transaction ends. Records it returns are shared: do not modify them.
type View struct {
	g    *bolt.Bucket
	meta *bolt.Bucket
	t    *tables
	// The buckets a decision reads, each looked up once per view and
	// only when needed: every nested bucket opened is a B+tree search and
	// a few allocations in bbolt.
	idx, recs, ids, block *bolt.Bucket
}

func (v *View) bucket(b **bolt.Bucket, name []byte) *bolt.Bucket {
	if *b == nil {
		*b = v.g.Bucket(name)
	}
	return *b
}

// View runs fn with a view in a read transaction.
func (s *Store) View(fn func(*View) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		v, err := s.ViewTx(tx)
		if err != nil {
			return err
		}
		return fn(v)
	})
}

// ViewTx is a view in tx, a transaction of the store's database; a lane
// uses the write transaction that records presence, so that the decision
// and its effect are one step.
func (s *Store) ViewTx(tx *bolt.Tx) (*View, error) {
	root := tx.Bucket(RootBucket)
	if root == nil {
		return nil, fmt.Errorf("permit: bucket missing")
	}
	meta := root.Bucket(metaBucket)
	var name [9]byte
	g := root.Bucket(appendGenName(name[:0], getU64(meta, keyLive)))
	if g == nil {
		return nil, fmt.Errorf("permit: live generation missing: the database is damaged")
	}
	ver := getU64(meta, keyVer)
	t := s.tables.Load()
	if t == nil || t.ver != ver {
		var err error
		if t, err = loadTables(g, ver); err != nil {
			return nil, err
		}
		// Keep only the newest: a view in an older transaction must not
		// push a newer one out.
		for {
			cur := s.tables.Load()
			if cur != nil && cur.ver >= ver || s.tables.CompareAndSwap(cur, t) {
				break
			}
		}
	}
	return &View{g: g, meta: meta, t: t}, nil
}

// Seq is the last batch applied as of this view.
func (v *View) Seq() uint64 { return getU64(v.meta, keySeq) }

// Holder is one record that registers a plate.
type Holder struct {
	Plate string
	// Pos is the plate's place in the record's list of plates (0 for the
	// first): a product may allow fewer vehicles than a permit lists.
	Pos     int
	Permit  *Permit  // set for a permit
	Account *Account // set for an account
}

// Holders returns every permit and account that registers a plate whose
// plate.ConfusionKey is key: the plate read and every plate a recogniser
// could confuse it with. Two B+tree reads: the index, then the records.
// The records come without their plates (Plates is nil: the decision has
// the plate and its place in Holder); Permit and Account have them.
func (v *View) Holders(key string) ([]Holder, error) {
	if len(key) == 0 || len(key) > maxPlateLen {
		return nil, nil
	}
	var kb [maxPlateLen + 1]byte
	k := indexKey(&kb, key)
	entries := v.bucket(&v.idx, indexBucket).Get(k)
	if entries == nil {
		return nil, nil
	}
	var out []Holder
	var derr error
	err := walkIndexKey(k, entries, key, func(p []byte, e indexEntry) {
		if derr != nil {
			return
		}
		rec, err := getRecord(v.bucket(&v.recs, recBucket), e.ref)
		if err != nil || len(rec) < 1 || rec[0] != e.kind {
			derr = cmp.Or(err, fmt.Errorf("permit: index names record %d, which is missing", e.ref))
			return
		}
		h := Holder{Plate: string(p), Pos: e.pos}
		switch e.kind {
		case kindPermit:
			h.Permit, derr = decodePermit(rec)
		case kindAccount:
			h.Account, derr = decodeAccount(rec)
		}
		if derr != nil {
			return
		}
		if out == nil {
			out = make([]Holder, 0, 2)
		}
		out = append(out, h)
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// Blocked returns the block list entry for plate, if any.
func (v *View) Blocked(plate string) (*Block, error) {
	var kb [maxPlateLen]byte
	if len(plate) == 0 || len(plate) > maxPlateLen || !v.t.blocks {
		return nil, nil
	}
	b := v.bucket(&v.block, blockBucket).Get(append(kb[:0], plate...))
	if b == nil {
		return nil, nil
	}
	e := new(Block)
	if err := json.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("permit: block list entry %s: %w", plate, err)
	}
	return e, nil
}

// Facility returns facility id, or nil.
func (v *View) Facility(id string) *Facility { return v.t.facilities[id] }

// Product returns product id, or nil.
func (v *View) Product(id string) *Product { return v.t.products[id] }

// Pool returns pool id, or nil.
func (v *View) Pool(id string) *Pool { return v.t.pools[id] }

// Closures returns the closures of facility (in force or not).
func (v *View) Closures(facility string) []*Closure { return v.t.closures[facility] }

// Permit returns permit id, with its plates, or nil.
func (v *View) Permit(id string) (*Permit, error) {
	rec, plates, err := v.record(kindPermit, id)
	if rec == nil {
		return nil, err
	}
	p, err := decodePermit(rec)
	if err != nil {
		return nil, err
	}
	p.Plates = plates
	return p, nil
}

// Account returns account id, with its plates, or nil.
func (v *View) Account(id string) (*Account, error) {
	rec, plates, err := v.record(kindAccount, id)
	if rec == nil {
		return nil, err
	}
	a, err := decodeAccount(rec)
	if err != nil {
		return nil, err
	}
	a.Plates = plates
	return a, nil
}

// record returns the stored record and the plates of id.
func (v *View) record(kind byte, id string) ([]byte, []string, error) {
	ref := v.bucket(&v.ids, idBucket).Get(append([]byte{kind}, id...))
	if ref == nil {
		return nil, nil, nil
	}
	if len(ref) != 4 {
		return nil, nil, fmt.Errorf("permit: ref of %s is damaged", id)
	}
	r := uint64(binary.BigEndian.Uint32(ref))
	rec, err := getRecord(v.bucket(&v.recs, recBucket), r)
	if err == nil && (len(rec) < 1 || rec[0] != kind) {
		err = fmt.Errorf("permit: record of %s is missing", id)
	}
	if err != nil {
		return nil, nil, err
	}
	pl, err := getRecord(v.g.Bucket(plateBucket), r)
	if err == nil && pl == nil {
		err = fmt.Errorf("permit: plates of %s are missing", id)
	}
	if err != nil {
		return nil, nil, err
	}
	plates, err := decodePlates(pl)
	if err != nil {
		return nil, nil, fmt.Errorf("permit: plates of %s: %w", id, err)
	}
	return rec, plates, nil
}

// Counts says how many records of each kind the view holds.
type Counts struct {
	Facilities, Products, Pools, Closures, Permits, Accounts, Blocks, Plates int
}

// Counts counts the records. It reads every id, so it is for tools and
// tests, not the decision path.
func (v *View) Counts() Counts {
	c := Counts{Facilities: len(v.t.facilities), Products: len(v.t.products), Pools: len(v.t.pools),
		Blocks: v.g.Bucket(blockBucket).Stats().KeyN}
	for _, cs := range v.t.closures {
		c.Closures += len(cs)
	}
	v.g.Bucket(idBucket).ForEach(func(k, _ []byte) error {
		if k[0] == kindPermit {
			c.Permits++
		} else {
			c.Accounts++
		}
		return nil
	})
	v.bucket(&v.idx, indexBucket).ForEach(func(k, e []byte) error {
		walkIndex(k, e, func([]byte, indexEntry) { c.Plates++ })
		return nil
	})
	return c
}

// Dump returns every record of the view as put changes, in a stable
// order: what a snapshot of this state would carry. For tests and tools.
func (v *View) Dump() ([]Change, error) {
	var out []Change
	for _, f := range sortedValues(v.t.facilities) {
		out = append(out, Change{Op: Put, Facility: f})
	}
	for _, p := range sortedValues(v.t.products) {
		out = append(out, Change{Op: Put, Product: p})
	}
	for _, p := range sortedValues(v.t.pools) {
		out = append(out, Change{Op: Put, Pool: p})
	}
	var cl []*Closure
	for _, cs := range v.t.closures {
		cl = append(cl, cs...)
	}
	slices.SortFunc(cl, func(a, b *Closure) int { return strings.Compare(a.ID, b.ID) })
	for _, c := range cl {
		out = append(out, Change{Op: Put, Closure: c})
	}
	err := v.g.Bucket(blockBucket).ForEach(func(_, val []byte) error {
		b := new(Block)
		out = append(out, Change{Op: Put, Block: b})
		return json.Unmarshal(val, b)
	})
	if err != nil {
		return nil, err
	}
	err = v.g.Bucket(idBucket).ForEach(func(k, _ []byte) error {
		if k[0] == kindPermit {
			p, err := v.Permit(string(k[1:]))
			out = append(out, Change{Op: Put, Permit: p})
			return err
		}
		a, err := v.Account(string(k[1:]))
		out = append(out, Change{Op: Put, Account: a})
		return err
	})
	return out, err
}

func sortedValues[T any](m map[string]*T) []*T {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*T, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}
