package permit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Bucket layout. Everything lives under RootBucket, which migration 2 in
// internal/state creates:
//
//	meta            live -> generation, seq -> last batch, ver -> commit
//	                count (for the in-memory tables), staging -> generation
//	                of a snapshot being loaded
//	g<generation>   one complete data set, with format -> genFormat:
//	  r             record group (ref >> 3) -> the group's permits and
//	                accounts, binary, without their plates (pack.go,
//	                codec.go)
//	  pl            record group -> the plates of the group's records, by
//	                slot as in r; not read by decisions
//	  i             kind byte + id -> ref (4 bytes)
//	  x             plate length + plate.ConfusionKey less its last 3
//	                characters -> index entries (plate, kind, ref, the
//	                plate's place in the record's plates)
//	  fac prod pool clos   id -> JSON
//	  block         plate -> JSON
//
// A snapshot fills a new generation beside the live one; the swap is one
// small write of meta.live, so readers see the old or the new set whole.
// A generation of an older format is converted when the store opens.
var (
	RootBucket = []byte("permits")

	metaBucket  = []byte("meta")
	keyLive     = []byte("live")
	keySeq      = []byte("seq")
	keyVer      = []byte("ver")
	keyStaging  = []byte("staging")
	keyFormat   = []byte("format")
	recBucket   = []byte("r")
	plateBucket = []byte("pl")
	idBucket    = []byte("i")
	indexBucket = []byte("x")
	facBucket   = []byte("fac")
	prodBucket  = []byte("prod")
	poolBucket  = []byte("pool")
	closBucket  = []byte("clos")
	blockBucket = []byte("block")

	genBuckets = [][]byte{recBucket, plateBucket, idBucket, indexBucket, facBucket, prodBucket, poolBucket, closBucket, blockBucket}
)

// Kinds of plate-holding records, as stored in r, i and x.
const (
	kindPermit  byte = 'p'
	kindAccount byte = 'a'
)

// ErrGap is returned by Apply for a batch that does not follow the last
// one applied: sync must ask for a resync.
type ErrGap struct{ Last, Got uint64 }

func (e *ErrGap) Error() string {
	if e.Got <= e.Last {
		return fmt.Sprintf("permit batch %d is already applied (last is %d)", e.Got, e.Last)
	}
	return fmt.Sprintf("permit batch %d does not follow the last applied, %d: batches %d..%d are missing", e.Got, e.Last, e.Last+1, e.Got-1)
}

// Stale reports whether the batch was applied before (a repeat, harmless).
func (e *ErrGap) Stale() bool { return e.Got <= e.Last }

// Store is the permit data in the daemon's database. It is safe for
// concurrent use: any number of views, one writer at a time.
type Store struct {
	db     *bolt.DB
	tables atomic.Pointer[tables]

	mu      sync.Mutex // guards loading
	loading bool

	converted Conversion
}

// Open uses the permit buckets of db, which migrations must have made. It
// starts an empty data set in a new database and removes any generation
// that is not live: a snapshot cut short by a crash, or the old set of a
// swap whose clean-up did not finish.
//
// A live generation of an older format (see genFormat) is converted to
// this one, as a snapshot loaded from its records under the same
// sequence number, before Open returns: the data is carried over. If the
// old data cannot be read or fails a snapshot's checks, the store starts
// empty at sequence 0 instead, which makes sync ask the central system
// for a full snapshot (resync) with the next batch it receives;
// Converted says which happened.
func Open(db *bolt.DB) (*Store, error) {
	s := &Store{db: db}
	var format uint64
	err := db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(RootBucket)
		if root == nil {
			return errors.New("permit: bucket missing; the state migrations have not run")
		}
		meta, err := root.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		live := getU64(meta, keyLive)
		if live == 0 {
			live = 1
			if err := newGen(root, live); err != nil {
				return err
			}
			if err := putU64(meta, keyLive, live); err != nil {
				return err
			}
		}
		if err := meta.Delete(keyStaging); err != nil {
			return err
		}
		format = getU64(root.Bucket(genName(live)), keyFormat)
		if format == 0 {
			format = formatV1 // written before generations had a format
		}
		return dropGens(root, live)
	})
	if err != nil {
		return nil, fmt.Errorf("permit: open: %w", err)
	}
	if format != genFormat {
		if err := s.convert(format); err != nil {
			return nil, fmt.Errorf("permit: open: %w", err)
		}
	}
	return s, nil
}

func genName(g uint64) []byte {
	var buf [9]byte
	return appendGenName(buf[:0], g)
}

func appendGenName(b []byte, g uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 'g'), g)
}

func newGen(root *bolt.Bucket, g uint64) error {
	gb, err := root.CreateBucket(genName(g))
	if err != nil {
		return err
	}
	for _, name := range genBuckets {
		if _, err := gb.CreateBucket(name); err != nil {
			return err
		}
	}
	return putU64(gb, keyFormat, genFormat)
}

// dropGens deletes every generation except keep.
func dropGens(root *bolt.Bucket, keep uint64) error {
	var drop [][]byte
	c := root.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil && len(k) == 9 && k[0] == 'g' && binary.BigEndian.Uint64(k[1:]) != keep {
			drop = append(drop, append([]byte(nil), k...))
		}
	}
	for _, k := range drop {
		if err := root.DeleteBucket(k); err != nil {
			return err
		}
	}
	return nil
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putU64(b *bolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

// Seq is the sequence number of the last batch or snapshot applied; 0 for
// none.
func (s *Store) Seq() (uint64, error) {
	var seq uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		seq = getU64(tx.Bucket(RootBucket).Bucket(metaBucket), keySeq)
		return nil
	})
	return seq, err
}

// Apply applies b in one write transaction: every change or none. b must
// follow the last batch applied (Seq+1), else *ErrGap. A permit must name
// a product, and a pool if any, that exist after the batch, and register
// no more plates than its product allows.
func (s *Store) Apply(b *Batch) error {
	if err := b.Validate(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(RootBucket)
		meta := root.Bucket(metaBucket)
		if last := getU64(meta, keySeq); b.Seq != last+1 {
			return &ErrGap{Last: last, Got: b.Seq}
		}
		g := root.Bucket(genName(getU64(meta, keyLive)))
		for i := range b.Changes {
			if err := applyChange(g, &b.Changes[i]); err != nil {
				return fmt.Errorf("permit batch %d: changes[%d]: %w", b.Seq, i, err)
			}
		}
		for i := range b.Changes {
			c := &b.Changes[i]
			if c.Op == Put && c.Permit != nil {
				if err := checkRefs(g, c.Permit); err != nil {
					return fmt.Errorf("permit batch %d: changes[%d]: %w", b.Seq, i, err)
				}
			}
		}
		if err := putU64(meta, keySeq, b.Seq); err != nil {
			return err
		}
		return putU64(meta, keyVer, getU64(meta, keyVer)+1)
	})
}

// checkRefs: a permit whose product or pool is unknown could never be
// judged; refusing the batch tells the central system at once.
func checkRefs(g *bolt.Bucket, p *Permit) error {
	v := g.Bucket(prodBucket).Get([]byte(p.Product))
	if v == nil {
		return fmt.Errorf("permit %q: product %q is not known", p.ID, p.Product)
	}
	var prod Product
	if err := json.Unmarshal(v, &prod); err != nil {
		return fmt.Errorf("product %q: %w", p.Product, err)
	}
	if len(p.Plates) > prod.Vehicles() {
		return fmt.Errorf("permit %q: %d plates, but product %q allows %d", p.ID, len(p.Plates), prod.ID, prod.Vehicles())
	}
	if p.Pool != "" && g.Bucket(poolBucket).Get([]byte(p.Pool)) == nil {
		return fmt.Errorf("permit %q: pool %q is not known", p.ID, p.Pool)
	}
	return nil
}

func applyChange(g *bolt.Bucket, c *Change) error {
	switch {
	case c.Permit != nil:
		return applyHolder(g, kindPermit, c.Permit.ID, c.Op, c.Permit, c.Permit.Plates)
	case c.Account != nil:
		return applyHolder(g, kindAccount, c.Account.ID, c.Op, c.Account, c.Account.Plates)
	case c.Facility != nil:
		return putOrDelete(g.Bucket(facBucket), c.Op, c.Facility.ID, c.Facility)
	case c.Product != nil:
		return putOrDelete(g.Bucket(prodBucket), c.Op, c.Product.ID, c.Product)
	case c.Pool != nil:
		return putOrDelete(g.Bucket(poolBucket), c.Op, c.Pool.ID, c.Pool)
	case c.Closure != nil:
		return putOrDelete(g.Bucket(closBucket), c.Op, c.Closure.ID, c.Closure)
	case c.Block != nil:
		return putOrDelete(g.Bucket(blockBucket), c.Op, c.Block.Plate, c.Block)
	}
	return errNoRecord
}

func putOrDelete(b *bolt.Bucket, op Op, key string, rec any) error {
	if op == Delete {
		return b.Delete([]byte(key))
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), v)
}

// applyHolder puts or deletes a permit or account and keeps the plate
// index in step. A delete of a record not held is not an error: deletes
// are idempotent so a repeated one does no harm.
func applyHolder(g *bolt.Bucket, kind byte, id string, op Op, rec any, plates []string) error {
	recs, pls, ids, idx := g.Bucket(recBucket), g.Bucket(plateBucket), g.Bucket(idBucket), g.Bucket(indexBucket)
	idKey := append([]byte{kind}, id...)
	var ref uint64
	if v := ids.Get(idKey); v != nil {
		if len(v) != 4 {
			return fmt.Errorf("stored ref of %s is damaged", id)
		}
		ref = uint64(binary.BigEndian.Uint32(v))
		old, err := getRecord(pls, ref)
		if err != nil {
			return fmt.Errorf("stored plates of %s: %w", id, err)
		}
		if old == nil {
			return fmt.Errorf("stored plates of %s are missing", id)
		}
		oldPlates, err := decodePlates(old)
		if err != nil {
			return fmt.Errorf("stored plates of %s: %w", id, err)
		}
		for _, p := range oldPlates {
			if err := unindex(idx, p, kind, ref); err != nil {
				return err
			}
		}
	}
	if op == Delete {
		if ref == 0 {
			return nil
		}
		if err := putRecord(recs, ref, nil); err != nil {
			return err
		}
		if err := putRecord(pls, ref, nil); err != nil {
			return err
		}
		return ids.Delete(idKey)
	}
	if ref == 0 {
		var err error
		if ref, err = recs.NextSequence(); err != nil {
			return err
		}
		if ref > maxRef {
			return errors.New("more than 4 billion records were ever stored: load a snapshot")
		}
		if err := ids.Put(idKey, refValue(ref)); err != nil {
			return err
		}
	}
	if err := putRecord(recs, ref, encodeRecord(rec)); err != nil {
		return err
	}
	if err := putRecord(pls, ref, encodePlates(plates)); err != nil {
		return err
	}
	for i, p := range plates {
		if err := index(idx, p, indexEntry{kind: kind, ref: ref, pos: i}); err != nil {
			return err
		}
	}
	return nil
}

func refValue(ref uint64) []byte { return binary.BigEndian.AppendUint32(nil, uint32(ref)) }

// getRecord returns the stored record of ref, or nil.
func getRecord(recs *bolt.Bucket, ref uint64) ([]byte, error) {
	var gk [4]byte
	g := recs.Get(groupKey(&gk, ref))
	if g == nil {
		return nil, nil
	}
	return findRecord(g, byte(ref&slotMask))
}

// putRecord stores rec as ref's record; nil removes it.
func putRecord(recs *bolt.Bucket, ref uint64, rec []byte) error {
	var gk [4]byte
	k := groupKey(&gk, ref)
	g, err := setRecord(recs.Get(k), byte(ref&slotMask), rec)
	if err != nil {
		return err
	}
	k = append([]byte(nil), k...)
	if len(g) == 0 {
		return recs.Delete(k)
	}
	return recs.Put(k, g)
}

// encodeRecord encodes a *Permit or *Account (codec.go).
func encodeRecord(rec any) []byte {
	if p, ok := rec.(*Permit); ok {
		return encodePermit(p)
	}
	return encodeAccount(rec.(*Account))
}

// index adds plate p of a record to the plate index (pack.go).
func index(idx *bolt.Bucket, p string, e indexEntry) error {
	var kb [maxPlateLen + 1]byte
	key := append([]byte(nil), plateIndexKey(&kb, p)...)
	old := idx.Get(key)
	v := make([]byte, 0, len(old)+len(p)+binary.MaxVarintLen64)
	v = append(v, old...)
	v = appendIndexEntry(v, p, e)
	return idx.Put(key, v)
}

func unindex(idx *bolt.Bucket, p string, kind byte, ref uint64) error {
	var kb [maxPlateLen + 1]byte
	key := append([]byte(nil), plateIndexKey(&kb, p)...)
	old := idx.Get(key)
	v := make([]byte, 0, len(old))
	err := walkIndex(key, old, func(ep []byte, e indexEntry) {
		if string(ep) != p || e.kind != kind || e.ref != ref {
			v = appendIndexEntry(v, string(ep), e)
		}
	})
	if err != nil {
		return err
	}
	if len(v) == 0 {
		return idx.Delete(key)
	}
	return idx.Put(key, v)
}
