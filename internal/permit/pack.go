package permit

import (
	"encoding/binary"
	"errors"

	"anprd/internal/plate"
)

// Records and the plate index are packed many to a bbolt key. bbolt
// spends 16 bytes of page header on every key besides the key itself, as
// much as a plate's whole index entry, and a decision's reads land on
// random pages: the fewer pages the data needs, the fewer a daemon keeps
// resident and the fewer page faults a decision takes.

// Record groups: a record's ref (handed out in order, from 1) says its
// group, ref >> groupBits, and its slot in it, the low bits (eight
// records, some 600 bytes, so that several groups share a page). The key is
// the group as 4 bytes big-endian; the value is the group's records in
// slot order, each a slot byte, a uvarint length and the record.
const (
	groupBits = 3
	slotMask  = 1<<groupBits - 1
	// maxRef is the largest ref: refs are stored as 32 bits.
	maxRef = 1<<32 - 1
)

var errGroup = errors.New("permit: damaged record group")

// groupKey writes the key of ref's group into buf (4 bytes).
func groupKey(buf *[4]byte, ref uint64) []byte {
	binary.BigEndian.PutUint32(buf[:], uint32(ref>>groupBits))
	return buf[:]
}

// walkGroup calls fn for each record of a group, in slot order.
func walkGroup(g []byte, fn func(slot byte, rec []byte) bool) error {
	for len(g) > 0 {
		slot := g[0]
		n, w := binary.Uvarint(g[1:])
		if w <= 0 || n > uint64(len(g)-1-w) {
			return errGroup
		}
		rec := g[1+w : 1+w+int(n)]
		g = g[1+w+int(n):]
		if !fn(slot, rec) {
			return nil
		}
	}
	return nil
}

// findRecord returns the record in slot of group g, or nil.
func findRecord(g []byte, slot byte) ([]byte, error) {
	var out []byte
	err := walkGroup(g, func(s byte, rec []byte) bool {
		if s == slot {
			out = rec
		}
		return s < slot
	})
	return out, err
}

// setRecord returns a new group value with rec in slot (nil rec: the
// slot removed). g is not modified: bbolt may still hold it.
func setRecord(g []byte, slot byte, rec []byte) ([]byte, error) {
	out := make([]byte, 0, len(g)+len(rec)+4)
	put := func() {
		out = append(out, slot)
		out = binary.AppendUvarint(out, uint64(len(rec)))
		out = append(out, rec...)
	}
	done := rec == nil
	err := walkGroup(g, func(s byte, r []byte) bool {
		if s >= slot && !done {
			put()
			done = true
		}
		if s != slot {
			out = append(out, s)
			out = binary.AppendUvarint(out, uint64(len(r)))
			out = append(out, r...)
		}
		return true
	})
	if !done {
		put()
	}
	return out, err
}

// The plate index: a key is the length of the plates it holds and their
// plate.ConfusionKey less its last indexSuffix characters, so every plate
// a recogniser could confuse with another is under one key, with its
// neighbours. The value is entries of the plate (as many bytes as the
// key says) and a uvarint of the record's ref shifted left by one, the
// low bit set for an account. Keys are ordered by length, then key, as
// a snapshot writes them.
const indexSuffix = 3

// indexKey writes the index key of a plate whose confusion key is key
// into buf.
func indexKey(buf *[maxPlateLen + 1]byte, key string) []byte {
	b := append(buf[:0], byte(len(key)))
	return append(b, key[:max(0, len(key)-indexSuffix)]...)
}

// plateIndexKey is indexKey of plate p.
func plateIndexKey(buf *[maxPlateLen + 1]byte, p string) []byte {
	b := append(buf[:0], byte(len(p)))
	for i := 0; i < len(p)-indexSuffix; i++ {
		b = append(b, plate.ConfusionOf(p[i]))
	}
	return b
}

var errIndex = errors.New("permit: damaged plate index entry")

// walkIndex calls fn for each entry of the index value v under key k.
func walkIndex(k, v []byte, fn func(p []byte, kind byte, ref uint64)) error {
	if len(k) < 1 {
		return errIndex
	}
	n := int(k[0])
	for len(v) > 0 {
		if len(v) < n+1 {
			return errIndex
		}
		p := v[:n]
		x, w := binary.Uvarint(v[n:])
		if w <= 0 || x>>1 == 0 || x>>1 > maxRef {
			return errIndex
		}
		kind := kindPermit
		if x&1 == 1 {
			kind = kindAccount
		}
		fn(p, kind, x>>1)
		v = v[n+w:]
	}
	return nil
}

func appendIndexEntry(v []byte, p string, kind byte, ref uint64) []byte {
	x := ref << 1
	if kind == kindAccount {
		x |= 1
	}
	return binary.AppendUvarint(append(v, p...), x)
}

// sameKey reports whether plate p has the confusion key key.
func sameKey(p []byte, key string) bool {
	if len(p) != len(key) {
		return false
	}
	for i := range p {
		if plate.ConfusionOf(p[i]) != key[i] {
			return false
		}
	}
	return true
}
