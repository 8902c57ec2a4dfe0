package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"anprd/internal/decide"
	"anprd/internal/passage"

	bolt "go.etcd.io/bbolt"
)

// Retention of personal data in the local copies (docs/protocol.md, ack):
// retention.evidence after a passage, once it was delivered and needs no
// follow-up (or the central system acknowledged it), its evidence images
// are deleted and its plate is removed from the local copy. The rest of
// the copy stays until retention.passages (Sweep).
//
//	outbox/ret  passage id -> flags byte, ack time (unix ns, 8 bytes)
//
// ret is made by Open when missing (it is inside the outbox's own bucket,
// so an older anprd that opens the database ignores it).
var retBucket = []byte("ret")

const (
	flagAcked    byte = 1 << 0 // the central system acknowledged it
	flagRedacted byte = 1 << 1 // images deleted, plate removed
)

// FollowUp reports whether the central system may raise a short-term
// charge or a control sanction from p, so that its evidence must be kept
// until it acknowledges p: every passage of a vehicle that went through
// the lane (or a free-flow lane), except one covered by a valid permit
// and simply let in or out. A vehicle turned away or backed out, and a
// manual opening's audit record, need none. (domain.md, "Unregistered
// vehicles, charges and sanctions".)
func FollowUp(p *passage.Passage) bool {
	through := p.Gate.Passed || p.Gate.Action == passage.NoBarrier
	switch {
	case !through:
		return false
	case p.Kind == passage.Tailgate:
		return true
	case p.Kind == passage.Manual || p.Decision == nil:
		return false
	}
	return p.Decision.Class != decide.Permit || p.Decision.Action != decide.Open
}

// Redact removes the plate and the evidence from a passage's local copy:
// what identifies the vehicle or a person goes, the lane, the times, the
// classification and what it counted against stay.
func Redact(p *passage.Passage) {
	p.Read = nil
	if d := p.Decision; d != nil {
		d.Plate, d.Ambiguous, d.Reference = "", nil, ""
	}
	p.Evidence = passage.Evidence{}
	if pr := p.Presence; pr != nil {
		pr.Leave = ""
		if pr.Enter != nil {
			pr.Enter.Plate = ""
		} else {
			p.Presence = nil
		}
	}
}

// Files is the evidence store as retention uses it; *evidence.Store is
// one.
type Files interface {
	// Remove deletes one image by the path the passage names; a file
	// already gone is not an error.
	Remove(path string) error
	// SweepKeeping deletes images older than maxAge at now, except those
	// keep says to keep, and returns how many it deleted.
	SweepKeeping(now time.Time, maxAge time.Duration, keep func(path string) bool) (int, error)
}

// RetainResult is what one retention round did.
type RetainResult struct {
	Redacted int // passages whose images and plate went
	Files    int // images deleted (of those passages, and of no passage)
	Held     int // past retention, kept for follow-up until acknowledged
}

// keepMargin: the images of a passage recorded up to this long after the
// cutoff are kept from the sweep of images of no passage, since a read's
// images can be older than its passage (a lane waits up to 8 s for the
// evidence, a manual opening takes a read of up to 2 minutes before).
const keepMargin = time.Hour

// retainChunk is how many passages one redaction transaction takes, and
// retainScanChunk how many local copies one read transaction looks at,
// so Record never waits long behind retention.
var (
	retainChunk     = 256
	retainScanChunk = 1000
)

// Retain runs one retention round at now: the passages older than maxAge
// that were delivered and need no follow-up, or were acknowledged, lose
// their images (deleted through files) and then their plate (one
// transaction per chunk); then the images older than maxAge that no kept
// passage names are deleted. A crash, or an error, between the two steps
// leaves passages the next round finishes; an image that a passage still
// needs is never deleted.
func (o *Outbox) Retain(now time.Time, maxAge time.Duration, files Files) (RetainResult, error) {
	cutoff := now.Add(-maxAge)
	var res RetainResult
	type due struct {
		id    passage.ID
		paths []string
	}
	var todo []due
	keep := map[string]bool{}
	// The local copies are read in short transactions: a long read
	// transaction would hold up a Record that needs the file to grow.
	var errs []error
	var from []byte
	for {
		var next []byte
		err := o.db.View(func(tx *bolt.Tx) error {
			b := open(tx)
			c := b.p.Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == retainScanChunk {
					next = append([]byte(nil), k...)
					return nil
				}
				n++
				var id passage.ID
				if len(k) != len(id) || len(v) < 2 {
					errs = append(errs, fmt.Errorf("damaged record (key %d bytes, value %d bytes)", len(k), len(v)))
					continue
				}
				copy(id[:], k)
				at := id.Time()
				if !at.Before(cutoff.Add(keepMargin)) {
					return nil
				}
				flags, _ := retFlags(b.ret, k)
				if flags&flagRedacted != 0 {
					continue
				}
				var p passage.Passage
				if err := json.Unmarshal(v[1:], &p); err != nil {
					// Its images cannot be told: the sweep of images of
					// no passage is skipped this round (errs).
					errs = append(errs, fmt.Errorf("passage %s: %w", id, err))
					continue
				}
				paths := evidencePaths(&p)
				eligible := at.Before(cutoff) && v[0] == stateSent && (flags&flagAcked != 0 || !FollowUp(&p))
				if !eligible {
					if at.Before(cutoff) && v[0] == stateSent {
						res.Held++
					}
					for _, path := range paths {
						keep[path] = true
					}
					continue
				}
				todo = append(todo, due{id, paths})
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("outbox: retention: %w", err)
		}
		if next == nil {
			break
		}
		from = next
	}
	o.m.held.Set(float64(res.Held))

	for len(todo) > 0 {
		n := min(retainChunk, len(todo))
		chunk := todo[:n]
		todo = todo[n:]
		var done []passage.ID
		for _, d := range chunk {
			ok := true
			for _, path := range d.paths {
				if keep[path] {
					continue // another passage still needs it
				}
				if err := files.Remove(path); err != nil {
					if errors.Is(err, ErrStop) {
						// Stop here: the images of this chunk may be
						// gone, its plates stay until the next round.
						o.m.retentionErrors.Inc()
						return res, fmt.Errorf("outbox: retention: %w", err)
					}
					errs = append(errs, fmt.Errorf("passage %s: %w", d.id, err))
					ok = false
					continue
				}
				res.Files++
				o.m.filesDeleted.Inc()
			}
			if ok {
				done = append(done, d.id)
			}
		}
		n, err := o.redact(done)
		res.Redacted += n
		o.m.redacted.Add(float64(n))
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	if len(errs) == 0 {
		n, err := files.SweepKeeping(now, maxAge, func(path string) bool { return keep[path] })
		res.Files += n
		o.m.filesDeleted.Add(float64(n))
		if err != nil {
			errs = append(errs, err)
		}
		if err := o.pruneRet(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		o.m.retentionErrors.Inc()
		return res, fmt.Errorf("outbox: retention: %w", errors.Join(errs...))
	}
	return res, nil
}

// ErrStop, returned by Files.Remove, ends the round at once (a test's
// crash, or a disk that has gone away).
var ErrStop = errors.New("retention stopped")

func evidencePaths(p *passage.Passage) []string {
	var out []string
	for _, s := range []string{p.Evidence.Plate, p.Evidence.Scene} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func retFlags(b *bolt.Bucket, k []byte) (byte, time.Time) {
	v := b.Get(k)
	if len(v) < 1 {
		return 0, time.Time{}
	}
	var acked time.Time
	if len(v) >= 9 {
		acked = time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9])))
	}
	return v[0], acked
}

func putRet(b *bolt.Bucket, k []byte, flags byte, acked time.Time) error {
	v := []byte{flags}
	if !acked.IsZero() {
		v = binary.BigEndian.AppendUint64(v, uint64(acked.UnixNano()))
	}
	return b.Put(k, v)
}

// redact rewrites the local copies of ids without plate and evidence, in
// one transaction.
func (o *Outbox) redact(ids []passage.ID) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	n := 0
	err := o.db.Update(func(tx *bolt.Tx) error {
		n = 0
		b := open(tx)
		for _, id := range ids {
			rec := b.p.Get(id[:])
			if len(rec) < 2 || rec[0] != stateSent {
				continue // swept meanwhile
			}
			var p passage.Passage
			if err := json.Unmarshal(rec[1:], &p); err != nil {
				return fmt.Errorf("passage %s: %w", id, err)
			}
			Redact(&p)
			js, err := json.Marshal(&p)
			if err != nil {
				return err
			}
			if err := b.p.Put(id[:], append([]byte{stateSent}, js...)); err != nil {
				return err
			}
			flags, acked := retFlags(b.ret, id[:])
			if err := putRet(b.ret, id[:], flags|flagRedacted, acked); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: redact: %w", err)
	}
	return n, nil
}

// pruneRet forgets the retention state of passages whose local copy is
// gone (swept, or given up when the outbox was full).
func (o *Outbox) pruneRet() error {
	return o.db.Update(func(tx *bolt.Tx) error {
		b := open(tx)
		var gone [][]byte
		c := b.ret.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if b.p.Get(k) == nil {
				gone = append(gone, append([]byte(nil), k...))
			}
		}
		for _, k := range gone {
			if err := b.ret.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Acknowledge records the central system's acknowledgement of ids at
// now, in one transaction: from then on the normal retention applies to
// them. It returns how many of the ids this box holds and how many it
// does not (already swept, or not its own); a repeat changes nothing.
func (o *Outbox) Acknowledge(ids []passage.ID, now time.Time) (held, unknown int, err error) {
	err = o.db.Update(func(tx *bolt.Tx) error {
		held, unknown = 0, 0
		b := open(tx)
		for _, id := range ids {
			if b.p.Get(id[:]) == nil {
				unknown++
				continue
			}
			held++
			flags, acked := retFlags(b.ret, id[:])
			if flags&flagAcked != 0 {
				continue
			}
			if acked.IsZero() {
				acked = now
			}
			if err := putRet(b.ret, id[:], flags|flagAcked, acked); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: acknowledge: %w", err)
	}
	return held, unknown, nil
}

// Held reports whether passage id's evidence is kept for follow-up: it
// needs follow-up and the central system has not acknowledged it. The
// uplink sends such a passage's images whatever their age.
func (o *Outbox) Held(id passage.ID) bool {
	held := false
	o.db.View(func(tx *bolt.Tx) error {
		b := open(tx)
		held = isHeld(b, id[:], b.p.Get(id[:]))
		return nil
	})
	return held
}

// isHeld is Held inside a transaction, for the record rec of key k.
func isHeld(b buckets, k, rec []byte) bool {
	if len(rec) < 2 {
		return false
	}
	if flags, _ := retFlags(b.ret, k); flags&(flagAcked|flagRedacted) != 0 {
		return false
	}
	var p passage.Passage
	if json.Unmarshal(rec[1:], &p) != nil {
		return true // cannot tell: keep it
	}
	return FollowUp(&p)
}

// Acked reports whether the central system acknowledged passage id.
func (o *Outbox) Acked(id passage.ID) bool {
	acked := false
	o.db.View(func(tx *bolt.Tx) error {
		flags, _ := retFlags(open(tx).ret, id[:])
		acked = flags&flagAcked != 0
		return nil
	})
	return acked
}
