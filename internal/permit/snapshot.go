package permit

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"anprd/internal/plate"

	bolt "go.etcd.io/bbolt"
)

// Snapshot loads a complete data set beside the live one. Add writes
// chunks as they arrive (each its own short transaction, so presence
// writes are not held up); Commit swaps the new set in at once. Until
// then every view reads the old set, and a crash leaves the old set live
// (Open removes the half-loaded one).
type Snapshot struct {
	s    *Store
	gen  uint64
	next uint32 // last ref handed out
	// group is the record group being filled (of ref next), written
	// again with each chunk until it is full.
	group []byte

	// Plate index and id entries are collected and written sorted at
	// Commit: bbolt writes appended keys densely and fast, while random
	// inserts over many transactions would rewrite most pages each time.
	// The records' plates (bucket pl) are written at Commit too, from
	// plates in ref order (nplates[ref-1] of them for ref): in a region
	// of the file of their own, away from the records a decision reads
	// (the kernel maps a page's neighbours with it).
	plates  []plateEntry
	nplates []uint8
	ids     []idEntry

	products map[string]int // product -> most plates on one of its permits
	pools    map[string]bool
	done     bool
}

type plateEntry struct {
	p    [maxPlateLen]byte
	n    uint8
	kind byte
	pos  uint8
	ref  uint32
}

func (e *plateEntry) plate() []byte { return e.p[:e.n] }

type idEntry struct {
	id   string
	kind byte
	ref  uint32
}

// ErrLoading is returned by NewSnapshot while another snapshot loads.
var ErrLoading = errors.New("permit: a snapshot is already loading")

// NewSnapshot starts loading a snapshot in a new generation.
func (s *Store) NewSnapshot() (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loading {
		return nil, ErrLoading
	}
	sn := &Snapshot{s: s, products: map[string]int{}, pools: map[string]bool{}}
	err := s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(RootBucket)
		meta := root.Bucket(metaBucket)
		if old := getU64(meta, keyStaging); old != 0 {
			if err := root.DeleteBucket(genName(old)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
		}
		sn.gen = getU64(meta, keyLive) + 1
		if err := newGen(root, sn.gen); err != nil {
			return err
		}
		return putU64(meta, keyStaging, sn.gen)
	})
	if err != nil {
		return nil, fmt.Errorf("permit: start snapshot: %w", err)
	}
	s.loading = true
	return sn, nil
}

// Add validates and writes one chunk of put changes in one transaction.
// Records may come in any order and any chunking; a record given twice is
// an error at Commit.
func (sn *Snapshot) Add(cs []Change) error {
	if sn.done {
		return errors.New("permit: snapshot already committed or aborted")
	}
	for i := range cs {
		if cs[i].Op != Put {
			return fmt.Errorf("permit snapshot: changes[%d]: op %q: a snapshot holds puts only", i, cs[i].Op)
		}
		if err := cs[i].Validate(); err != nil {
			return fmt.Errorf("permit snapshot: changes[%d]: %w", i, err)
		}
	}
	next := sn.next
	group := slices.Clone(sn.group)
	var plates []plateEntry
	var nplates []uint8
	var ids []idEntry
	err := sn.s.db.Update(func(tx *bolt.Tx) error {
		g := tx.Bucket(RootBucket).Bucket(genName(sn.gen))
		if g == nil {
			return errors.New("staging generation missing")
		}
		recs := g.Bucket(recBucket)
		recs.FillPercent = 1 // refs only grow: pack pages full
		// The group of ref next is written whenever it is complete, and
		// once more at the end of the chunk.
		flush := func() error {
			if len(group) == 0 {
				return nil
			}
			var gk [4]byte
			return recs.Put(slices.Clone(groupKey(&gk, uint64(next))), group)
		}
		for i := range cs {
			c := &cs[i]
			var kind byte
			var rec any
			var ps []string
			switch {
			case c.Permit != nil:
				kind, rec, ps = kindPermit, c.Permit, c.Permit.Plates
			case c.Account != nil:
				kind, rec, ps = kindAccount, c.Account, c.Account.Plates
			default:
				if err := applyChange(g, c); err != nil {
					return fmt.Errorf("changes[%d]: %w", i, err)
				}
				continue
			}
			if next == maxRef {
				return errors.New("more than 4 billion records")
			}
			if (next+1)&slotMask == 0 {
				// next+1 starts a new group
				if err := flush(); err != nil {
					return err
				}
				group = nil
			}
			next++
			group = appendSlot(group, byte(next&slotMask), encodeRecord(rec))
			ids = append(ids, idEntry{id: c.id(), kind: kind, ref: next})
			nplates = append(nplates, uint8(len(ps)))
			for i, p := range ps {
				e := plateEntry{n: uint8(len(p)), kind: kind, pos: uint8(i), ref: next}
				copy(e.p[:], p)
				plates = append(plates, e)
			}
		}
		return flush()
	})
	if err != nil {
		return fmt.Errorf("permit snapshot: %w", err)
	}
	// Only a committed chunk counts.
	sn.next = next
	sn.group = group
	sn.nplates = append(sn.nplates, nplates...)
	sn.ids = append(sn.ids, ids...)
	sn.plates = append(sn.plates, plates...)
	for i := range cs {
		if p := cs[i].Permit; p != nil {
			sn.products[p.Product] = max(sn.products[p.Product], len(p.Plates))
			if p.Pool != "" {
				sn.pools[p.Pool] = true
			}
		}
	}
	return nil
}

// chunk is how many keys Commit writes per transaction.
const chunk = 50000

// Commit checks the snapshot (no record twice, every product and pool a
// permit names is in it), writes the id map and plate index, then makes
// the snapshot live with sequence number seq in one small transaction.
// The old set is deleted afterwards.
func (sn *Snapshot) Commit(seq uint64) error {
	if sn.done {
		return errors.New("permit: snapshot already committed or aborted")
	}
	if err := sn.commit(seq); err != nil {
		sn.Abort()
		return fmt.Errorf("permit snapshot: %w", err)
	}
	return nil
}

func (sn *Snapshot) commit(seq uint64) error {
	if seq == 0 {
		return errors.New("seq is required")
	}
	db := sn.s.db
	// Cross-record checks against the staged small tables.
	err := db.View(func(tx *bolt.Tx) error {
		g := tx.Bucket(RootBucket).Bucket(genName(sn.gen))
		for id, n := range sn.products {
			v := g.Bucket(prodBucket).Get([]byte(id))
			if v == nil {
				return fmt.Errorf("a permit names product %q, which the snapshot does not hold", id)
			}
			var p Product
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			if n > p.Vehicles() {
				return fmt.Errorf("a permit of product %q has %d plates; the product allows %d", id, n, p.Vehicles())
			}
		}
		for id := range sn.pools {
			if g.Bucket(poolBucket).Get([]byte(id)) == nil {
				return fmt.Errorf("a permit names pool %q, which the snapshot does not hold", id)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	slices.SortFunc(sn.ids, func(a, b idEntry) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.id, b.id))
	})
	for i := 1; i < len(sn.ids); i++ {
		if sn.ids[i].kind == sn.ids[i-1].kind && sn.ids[i].id == sn.ids[i-1].id {
			what := "permit"
			if sn.ids[i].kind == kindAccount {
				what = "account"
			}
			return fmt.Errorf("%s %q is in the snapshot twice", what, sn.ids[i].id)
		}
	}
	for lo := 0; lo < len(sn.ids); lo += chunk {
		part := sn.ids[lo:min(lo+chunk, len(sn.ids))]
		err := sn.fill(idBucket, func(b *bolt.Bucket) error {
			for _, e := range part {
				if err := b.Put(append([]byte{e.kind}, e.id...), refValue(uint64(e.ref))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	sn.ids = nil

	if err := sn.writePlates(); err != nil {
		return err
	}
	slices.SortFunc(sn.plates, comparePlateEntries)
	for lo := 0; lo < len(sn.plates); {
		err := sn.fill(indexBucket, func(b *bolt.Bucket) error {
			for n := 0; n < chunk && lo < len(sn.plates); {
				var kb [maxPlateLen + 1]byte
				k := slices.Clone(plateIndexKey(&kb, string(sn.plates[lo].plate())))
				var v []byte
				for ; lo < len(sn.plates) && sameIndexKey(sn.plates[lo].plate(), k); lo++ {
					e := &sn.plates[lo]
					v = appendIndexEntry(v, string(e.plate()), indexEntry{kind: e.kind, ref: uint64(e.ref), pos: int(e.pos)})
					n++
				}
				if err := b.Put(k, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	sn.plates = nil

	var old uint64
	err = db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(RootBucket)
		meta := root.Bucket(metaBucket)
		if getU64(meta, keyStaging) != sn.gen {
			return errors.New("staging generation was replaced")
		}
		if err := root.Bucket(genName(sn.gen)).Bucket(recBucket).SetSequence(uint64(sn.next)); err != nil {
			return err
		}
		old = getU64(meta, keyLive)
		if err := putU64(meta, keyLive, sn.gen); err != nil {
			return err
		}
		if err := putU64(meta, keySeq, seq); err != nil {
			return err
		}
		if err := putU64(meta, keyVer, getU64(meta, keyVer)+1); err != nil {
			return err
		}
		return meta.Delete(keyStaging)
	})
	if err != nil {
		return err
	}
	sn.done = true
	sn.s.mu.Lock()
	sn.s.loading = false
	sn.s.mu.Unlock()
	// The swap is done; if this fails or the process dies first, Open
	// removes the old set.
	return db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(RootBucket).DeleteBucket(genName(old))
	})
}

// writePlates writes each record's plates to the plates bucket, group by
// group in ref order, from sn.plates before it is sorted for the index.
func (sn *Snapshot) writePlates() error {
	at := 0 // next entry of sn.plates
	ref := uint64(1)
	for ref <= uint64(len(sn.nplates)) {
		err := sn.fill(plateBucket, func(b *bolt.Bucket) error {
			for keys := 0; keys < chunk && ref <= uint64(len(sn.nplates)); keys++ {
				var g []byte
				var gk [4]byte
				k := slices.Clone(groupKey(&gk, ref))
				for first := true; ref <= uint64(len(sn.nplates)) && (first || ref&slotMask != 0); ref++ {
					first = false
					n := int(sn.nplates[ref-1])
					ps := make([]string, n)
					for i := range ps {
						ps[i] = string(sn.plates[at+i].plate())
					}
					at += n
					g = appendSlot(g, byte(ref&slotMask), encodePlates(ps))
				}
				if err := b.Put(k, g); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	sn.nplates = nil
	return nil
}

// comparePlateEntries orders by plate length, then confusion key (as
// bytes.Compare orders the index keys, so the index is written in
// ascending key order and one key's entries are adjacent), then by plate,
// kind and ref for a stable value.
func comparePlateEntries(a, b plateEntry) int {
	ap, bp := a.plate(), b.plate()
	return cmp.Or(cmp.Compare(len(ap), len(bp)), cmpKeys(ap, bp), bytes.Compare(ap, bp), cmp.Compare(a.kind, b.kind), cmp.Compare(a.ref, b.ref))
}

// cmpKeys compares the confusion keys of two plates of one length
// without building them.
func cmpKeys(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if ca, cb := plate.ConfusionOf(a[i]), plate.ConfusionOf(b[i]); ca != cb {
			return cmp.Compare(ca, cb)
		}
	}
	return cmp.Compare(len(a), len(b))
}

// sameIndexKey reports whether plate p belongs under index key k.
func sameIndexKey(p, k []byte) bool {
	if len(p) != int(k[0]) {
		return false
	}
	for i, c := range k[1:] {
		if plate.ConfusionOf(p[i]) != c {
			return false
		}
	}
	return true
}

// fill runs fn on bucket name of the staging generation in one
// transaction, with pages packed full since keys arrive in order.
func (sn *Snapshot) fill(name []byte, fn func(*bolt.Bucket) error) error {
	return sn.s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(RootBucket).Bucket(genName(sn.gen)).Bucket(name)
		b.FillPercent = 1
		return fn(b)
	})
}

// Abort drops the snapshot; the live set is untouched.
func (sn *Snapshot) Abort() error {
	if sn.done {
		return nil
	}
	sn.done = true
	sn.plates, sn.nplates, sn.ids = nil, nil, nil
	sn.s.mu.Lock()
	sn.s.loading = false
	sn.s.mu.Unlock()
	return sn.s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(RootBucket)
		meta := root.Bucket(metaBucket)
		if getU64(meta, keyStaging) != sn.gen {
			return nil
		}
		if err := root.DeleteBucket(genName(sn.gen)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		return meta.Delete(keyStaging)
	})
}
