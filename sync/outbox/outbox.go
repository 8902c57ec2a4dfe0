// Package outbox keeps every passage on disk, in the daemon's bbolt
// database, from the moment a lane hands it over until the broker has
// acknowledged it, together with what goes out with it: the presence
// change for the site's other boxes and its evidence images. Record
// commits in one fsync'd transaction before it returns, so a passage
// that Record accepted survives a crash, a power cut and any length of
// broker outage; the uplink (sync/uplink) reads the waiting entries in
// order and marks them done only when delivered.
//
// The outbox is bounded: when it holds its maximum of waiting passages
// the configured policy says what gives way (the oldest waiting passage,
// or the new one), and every passage given up is counted, logged by the
// caller and shown on the status page, never dropped silently. After
// upload a passage's local copy is kept for the retention period, so a
// dispute can be looked into on site.
//
// This package must not touch the network or the broker client, and
// never blocks on either: it only reads and writes the database.
package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"anprd/internal/passage"
	"anprd/sync/protocol"

	bolt "go.etcd.io/bbolt"
)

// Buckets, made by migration 4 (uplink) in internal/state:
//
//	outbox/q     seq (uint64) -> kind, passage id, data: what waits for upload, in order
//	outbox/p     passage id -> state byte, passage JSON: every passage until its retention ends
//	outbox/meta  counters of what q holds
var (
	RootBucket  = []byte("outbox")
	queueBucket = []byte("q")
	passBucket  = []byte("p")
	metaBucket  = []byte("meta")

	keyPassages = []byte("passages") // passage entries in q
	keyEntries  = []byte("entries")  // all entries in q
)

// Kind is what an entry carries.
type Kind byte

const (
	KindPassage  Kind = 'p' // the passage (JSON)
	KindPresence Kind = 'r' // its presence change (protocol.Presence JSON)
	KindPlate    Kind = 'i' // its plate image (Data is the evidence path)
	KindScene    Kind = 's' // its scene image (Data is the evidence path)
)

func (k Kind) String() string {
	switch k {
	case KindPassage:
		return "passage"
	case KindPresence:
		return "presence"
	case KindPlate:
		return "plate_image"
	case KindScene:
		return "scene_image"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// State of a passage's local copy.
const (
	stateWaiting byte = 'w' // its passage entry is in q
	stateSent    byte = 's' // acknowledged by the broker
)

// Policy says what gives way when the outbox is full.
type Policy int

const (
	// DropOldest: the oldest waiting passage and its entries are removed
	// to make room for the new one.
	DropOldest Policy = iota
	// RefuseNew: the new passage is refused (Record returns ErrFull).
	RefuseNew
)

// ErrFull is returned by Record under RefuseNew when the outbox holds its
// maximum of waiting passages.
var ErrFull = errors.New("outbox: full; the passage was not kept")

// Options configure an Outbox.
type Options struct {
	// Max is the most passages waiting for upload; at least 1.
	Max    int
	Policy Policy
	// Evidence: queue the passage's evidence images for upload.
	Evidence bool
	// OnDrop is called, outside the transaction, with each passage given
	// up because the outbox was full (the caller logs it).
	OnDrop func(id passage.ID, policy Policy)
	// Kept is called inside Record's transaction with each passage kept
	// (or found kept already), so that what the caller writes there
	// commits or fails with it: the lanes' journal (access.Forget) lets
	// go of the passage there. An error fails the Record. May be nil.
	Kept func(tx *bolt.Tx, id passage.ID) error
	// Metrics may be nil.
	Metrics *Metrics
}

// Outbox is the durable queue. It is safe for concurrent use.
type Outbox struct {
	db   *bolt.DB
	o    Options
	m    *Metrics
	wake chan struct{}

	mu      sync.Mutex
	dropped uint64 // passages given up since Open
}

// Open uses the outbox buckets of db, which the migrations must have made.
func Open(db *bolt.DB, o Options) (*Outbox, error) {
	if o.Max < 1 {
		return nil, errors.New("outbox: Max must be at least 1")
	}
	err := db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(RootBucket)
		if root == nil || root.Bucket(queueBucket) == nil || root.Bucket(passBucket) == nil || root.Bucket(metaBucket) == nil {
			return errors.New("outbox: buckets missing; the state migrations have not run")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.Bucket(RootBucket).CreateBucketIfNotExists(retBucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	m := o.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Outbox{db: db, o: o, m: m, wake: make(chan struct{}, 1)}, nil
}

type buckets struct{ q, p, meta, ret *bolt.Bucket }

func open(tx *bolt.Tx) buckets {
	root := tx.Bucket(RootBucket)
	return buckets{root.Bucket(queueBucket), root.Bucket(passBucket), root.Bucket(metaBucket), root.Bucket(retBucket)}
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func addU64(b *bolt.Bucket, k []byte, d int) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(int64(getU64(b, k))+int64(d))))
}

func seqKey(s uint64) []byte { return binary.BigEndian.AppendUint64(nil, s) }

func entryValue(k Kind, id passage.ID, data []byte) []byte {
	v := make([]byte, 0, 17+len(data))
	v = append(v, byte(k))
	v = append(v, id[:]...)
	return append(v, data...)
}

// Entry is one message waiting for upload.
type Entry struct {
	Seq  uint64
	Kind Kind
	ID   passage.ID // the passage it belongs to
	// Data: the passage or presence JSON, or the evidence image's path
	// (relative to the evidence store).
	Data []byte
}

func parseEntry(k, v []byte) (Entry, error) {
	if len(k) != 8 || len(v) < 17 {
		return Entry{}, fmt.Errorf("outbox: damaged entry (key %d bytes, value %d bytes)", len(k), len(v))
	}
	e := Entry{Seq: binary.BigEndian.Uint64(k), Kind: Kind(v[0])}
	copy(e.ID[:], v[1:17])
	e.Data = append([]byte(nil), v[17:]...)
	return e, nil
}

// Record keeps p for upload: the passage, its presence change and (if
// evidence is on) its images, in one transaction that is on disk when
// Record returns; Options.Kept runs in that transaction (the lanes'
// journal forgets the passage there, so a passage is in the journal or
// here, never neither). A passage whose ID is already kept is not kept
// twice (Record is idempotent). It never waits for the network.
func (o *Outbox) Record(p passage.Passage) error {
	return o.RecordAll([]passage.Passage{p})
}

// prepared is a passage ready to be written.
type prepared struct {
	p       *passage.Passage
	js      []byte
	entries []Entry
}

func (o *Outbox) prepare(p *passage.Passage) (prepared, error) {
	if err := p.Validate(); err != nil {
		return prepared{}, fmt.Errorf("outbox: passage %s: %w", p.ID, err)
	}
	js, err := json.Marshal(p)
	if err != nil {
		return prepared{}, fmt.Errorf("outbox: passage %s: %w", p.ID, err)
	}
	entries := []Entry{{Kind: KindPassage}}
	if pm := protocol.PresenceOf(p); pm != nil {
		b, err := json.Marshal(pm)
		if err != nil {
			return prepared{}, fmt.Errorf("outbox: passage %s: %w", p.ID, err)
		}
		entries = append(entries, Entry{Kind: KindPresence, Data: b})
	}
	if o.o.Evidence {
		if p.Evidence.Plate != "" {
			entries = append(entries, Entry{Kind: KindPlate, Data: []byte(p.Evidence.Plate)})
		}
		if p.Evidence.Scene != "" {
			entries = append(entries, Entry{Kind: KindScene, Data: []byte(p.Evidence.Scene)})
		}
	}
	return prepared{p: p, js: js, entries: entries}, nil
}

// RecordAll records ps in one transaction, all or none (a tool that
// imports passages, a test); each is treated as Record treats one. Under
// RefuseNew a full outbox refuses the passages that do not fit and
// RecordAll returns ErrFull after keeping the others.
func (o *Outbox) RecordAll(ps []passage.Passage) error {
	pre := make([]prepared, len(ps))
	for i := range ps {
		var err error
		if pre[i], err = o.prepare(&ps[i]); err != nil {
			return err
		}
	}
	var dropped, refused []passage.ID
	recorded, dups := 0, 0
	err := o.db.Update(func(tx *bolt.Tx) error {
		dropped, refused, recorded, dups = nil, nil, 0, 0
		b := open(tx)
		for _, pp := range pre {
			id := pp.p.ID
			if b.p.Get(id[:]) != nil {
				dups++
				if err := o.kept(tx, id); err != nil {
					return err
				}
				continue
			}
			if n := getU64(b.meta, keyPassages); n >= uint64(o.o.Max) {
				if o.o.Policy == RefuseNew {
					refused = append(refused, id)
					continue
				}
				for range n - uint64(o.o.Max) + 1 {
					gone, err := dropOldest(b)
					if err != nil {
						return err
					}
					dropped = append(dropped, gone)
					if err := addU64(b.meta, keyPassages, -1); err != nil {
						return err
					}
				}
			}
			if err := b.p.Put(id[:], append([]byte{stateWaiting}, pp.js...)); err != nil {
				return err
			}
			for _, e := range pp.entries {
				seq, err := b.q.NextSequence()
				if err != nil {
					return err
				}
				if err := b.q.Put(seqKey(seq), entryValue(e.Kind, id, e.Data)); err != nil {
					return err
				}
			}
			if err := addU64(b.meta, keyPassages, 1); err != nil {
				return err
			}
			if err := addU64(b.meta, keyEntries, len(pp.entries)); err != nil {
				return err
			}
			if err := o.kept(tx, id); err != nil {
				return err
			}
			recorded++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: record: %w", err)
	}
	o.m.duplicates.Add(float64(dups))
	o.m.recorded.Add(float64(recorded))
	for _, g := range []struct {
		ids    []passage.ID
		policy Policy
		label  string
	}{{dropped, DropOldest, "drop_oldest"}, {refused, RefuseNew, "refuse_new"}} {
		if len(g.ids) == 0 {
			continue
		}
		o.m.dropped.WithLabelValues(g.label).Add(float64(len(g.ids)))
		o.count(len(g.ids))
		if o.o.OnDrop != nil {
			for _, id := range g.ids {
				o.o.OnDrop(id, g.policy)
			}
		}
	}
	if recorded > 0 {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	if len(refused) > 0 {
		return ErrFull
	}
	return nil
}

func (o *Outbox) kept(tx *bolt.Tx, id passage.ID) error {
	if o.o.Kept == nil {
		return nil
	}
	return o.o.Kept(tx, id)
}

func (o *Outbox) count(n int) {
	o.mu.Lock()
	o.dropped += uint64(n)
	o.mu.Unlock()
}

// dropOldest removes the oldest waiting passage, its local copy and the
// entries recorded with it (they follow it in q), and fixes the counters
// for the entries (the caller fixes the passage count).
func dropOldest(b buckets) (passage.ID, error) {
	c := b.q.Cursor()
	var id passage.ID
	found := false
	var del [][]byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		e, err := parseEntry(k, v)
		if err != nil {
			return id, err
		}
		if !found {
			if e.Kind != KindPassage {
				continue // an image or presence change of a passage already sent
			}
			id, found = e.ID, true
		} else if e.ID != id {
			break
		}
		del = append(del, append([]byte(nil), k...))
	}
	if !found {
		return id, errors.New("outbox: the passage count says full but no passage waits; the counters are damaged")
	}
	for _, k := range del {
		if err := b.q.Delete(k); err != nil {
			return id, err
		}
	}
	if err := b.p.Delete(id[:]); err != nil {
		return id, err
	}
	return id, addU64(b.meta, keyEntries, -len(del))
}

// Wake is signalled after each Record, for the uplink to look again.
func (o *Outbox) Wake() <-chan struct{} { return o.wake }

// Next returns up to max entries that follow seq after, in order, with
// the passage JSON as Data for passage entries.
func (o *Outbox) Next(after uint64, max int) ([]Entry, error) {
	var out []Entry
	err := o.db.View(func(tx *bolt.Tx) error {
		b := open(tx)
		c := b.q.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			e, err := parseEntry(k, v)
			if err != nil {
				return err
			}
			if e.Kind == KindPassage {
				rec := b.p.Get(e.ID[:])
				if len(rec) < 2 {
					return fmt.Errorf("outbox: entry %d: passage %s has no local copy", e.Seq, e.ID)
				}
				e.Data = append([]byte(nil), rec[1:]...)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Done removes delivered (or undeliverable) entries by seq, in one
// transaction. A passage entry done marks the passage sent; its local
// copy stays until Sweep. Seqs no longer in the outbox (given up while
// in flight) are skipped.
func (o *Outbox) Done(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	n := 0
	err := o.db.Update(func(tx *bolt.Tx) error {
		n = 0
		b := open(tx)
		passages := 0
		for _, s := range seqs {
			k := seqKey(s)
			v := b.q.Get(k)
			if v == nil {
				continue
			}
			e, err := parseEntry(k, v)
			if err != nil {
				return err
			}
			if e.Kind == KindPassage {
				if rec := b.p.Get(e.ID[:]); len(rec) > 0 {
					upd := append([]byte{stateSent}, rec[1:]...)
					if err := b.p.Put(e.ID[:], upd); err != nil {
						return err
					}
				}
				passages++
			}
			if err := b.q.Delete(k); err != nil {
				return err
			}
			n++
		}
		if err := addU64(b.meta, keyPassages, -passages); err != nil {
			return err
		}
		return addU64(b.meta, keyEntries, -n)
	})
	if err != nil {
		return fmt.Errorf("outbox: done: %w", err)
	}
	o.m.done.Add(float64(n))
	return nil
}

// Stats is what the outbox holds.
type Stats struct {
	Passages int       // waiting for upload
	Entries  int       // all entries waiting
	Oldest   time.Time // when the oldest waiting entry's passage was made; zero when empty
	Dropped  uint64    // passages given up since Open because it was full
	Max      int
}

// Stats reads the counters and the oldest entry.
func (o *Outbox) Stats() (Stats, error) {
	var s Stats
	err := o.db.View(func(tx *bolt.Tx) error {
		b := open(tx)
		s.Passages = int(getU64(b.meta, keyPassages))
		s.Entries = int(getU64(b.meta, keyEntries))
		if k, v := b.q.Cursor().First(); k != nil {
			e, err := parseEntry(k, v)
			if err != nil {
				return err
			}
			s.Oldest = e.ID.Time()
		}
		return nil
	})
	o.mu.Lock()
	s.Dropped = o.dropped
	o.mu.Unlock()
	s.Max = o.o.Max
	return s, err
}

// Full reports whether the next passage will make something give way.
func (s Stats) Full() bool { return s.Passages >= s.Max }

// Stored is a passage's local copy.
type Stored struct {
	Passage passage.Passage
	Sent    bool
}

// Get returns the local copy of passage id, or nil.
func (o *Outbox) Get(id passage.ID) (*Stored, error) {
	var out *Stored
	err := o.db.View(func(tx *bolt.Tx) error {
		rec := open(tx).p.Get(id[:])
		if rec == nil {
			return nil
		}
		if len(rec) < 2 {
			return fmt.Errorf("outbox: damaged record of %s", id)
		}
		out = &Stored{Sent: rec[0] == stateSent}
		return json.Unmarshal(rec[1:], &out.Passage)
	})
	return out, err
}

// sweepChunk is how many local copies Sweep deletes per transaction, so
// that Record never waits long behind it.
var sweepChunk = 1000

// Sweep deletes the local copies of sent passages made before now less
// keep, and returns how many. Passages still waiting are kept: they are
// needed for billing, and the bound limits them; so are passages kept
// for follow-up that the central system has not acknowledged (Held), with
// their images.
func (o *Outbox) Sweep(now time.Time, keep time.Duration) (int, error) {
	cutoff := now.Add(-keep)
	total := 0
	var from []byte
	for {
		n, next, err := o.sweep(from, cutoff)
		total += n
		if err != nil {
			return total, fmt.Errorf("outbox: sweep: %w", err)
		}
		if next == nil {
			o.m.swept.Add(float64(total))
			return total, nil
		}
		from = next
	}
}

func (o *Outbox) sweep(from []byte, cutoff time.Time) (int, []byte, error) {
	n := 0
	var next []byte
	err := o.db.Update(func(tx *bolt.Tx) error {
		n, next = 0, nil
		b := open(tx)
		c := b.p.Cursor()
		var del [][]byte
		k, v := c.First()
		if from != nil {
			k, v = c.Seek(from)
		}
		for ; k != nil; k, v = c.Next() {
			var id passage.ID
			if len(k) != len(id) {
				return fmt.Errorf("damaged key of %d bytes", len(k))
			}
			copy(id[:], k)
			if !id.Time().Before(cutoff) {
				break
			}
			if len(del) == sweepChunk {
				next = append([]byte(nil), k...)
				break
			}
			if len(v) > 0 && v[0] == stateSent && !isHeld(b, k, v) {
				del = append(del, append([]byte(nil), k...))
			}
		}
		for _, k := range del {
			if err := b.p.Delete(k); err != nil {
				return err
			}
			if err := b.ret.Delete(k); err != nil {
				return err
			}
		}
		n = len(del)
		return nil
	})
	return n, next, err
}
