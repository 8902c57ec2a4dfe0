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

// appendSlot appends a slot's record to a group being built in slot
// order.
func appendSlot(g []byte, slot byte, rec []byte) []byte {
	g = append(g, slot)
	g = binary.AppendUvarint(g, uint64(len(rec)))
	return append(g, rec...)
}

// setRecord returns a new group value with rec in slot (nil rec: the
// slot removed). g is not modified: bbolt may still hold it.
func setRecord(g []byte, slot byte, rec []byte) ([]byte, error) {
	out := make([]byte, 0, len(g)+len(rec)+4)
	done := rec == nil
	err := walkGroup(g, func(s byte, r []byte) bool {
		if s >= slot && !done {
			out = appendSlot(out, slot, rec)
			done = true
		}
		if s != slot {
			out = appendSlot(out, s, r)
		}
		return true
	})
	if !done {
		out = appendSlot(out, slot, rec)
	}
	return out, err
}

// The plate index: a key is the length of the plates it holds and their
// plate.ConfusionKey less its last indexSuffix characters, so every plate
// a recogniser could confuse with another is under one key, with its
// neighbours. The value is entries, each
//
//	variant  uvarint: which member of its confusion class each of the
//	         plate's first characters is (the key has their classes), as
//	         a number in mixed radix, the last character least
//	         significant: 0 for a character alone in its class
//	suffix   the plate's last characters, as they are (up to indexSuffix)
//	ref      uvarint: the record's ref shifted left by posBits+1, the
//	         plate's place in the record's plates shifted left by one,
//	         and the low bit set for an account
//
// so a plate of seven characters costs a byte and its last three (a
// decision reads every entry under a key, and the index is a third of the
// pages it touches). Keys are ordered by length, then key, as a snapshot
// writes them.
const (
	indexSuffix = 3
	// posBits holds a place in a list of up to maxPlates plates.
	posBits = 5
	posMask = 1<<posBits - 1
)

// A record's plates must all have a place that fits posBits.
var _ [posMask + 1 - maxPlates]struct{}

var errIndex = errors.New("permit: damaged plate index entry")

// classes numbers the members of each confusion class: for a character,
// its class's size and its place in it; for a class's representative,
// its members in byte order.
var classes = func() (t struct {
	size, place [256]byte
	members     [256][]byte
}) {
	for c := 0; c < 256; c++ {
		r := plate.ConfusionOf(byte(c))
		t.place[c] = byte(len(t.members[r]))
		t.members[r] = append(t.members[r], byte(c))
	}
	for c := 0; c < 256; c++ {
		t.size[c] = byte(len(t.members[plate.ConfusionOf(byte(c))]))
	}
	return t
}()

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

// indexEntry is one plate of one record in the index.
type indexEntry struct {
	kind byte
	ref  uint64
	pos  int // the plate's place in the record's plates
}

// walkIndex calls fn for each entry of the index value v under key k
// with the entry's plate (valid during the call only).
func walkIndex(k, v []byte, fn func(p []byte, e indexEntry)) error {
	if len(k) < 1 || int(k[0]) > maxPlateLen || len(k) != 1+max(0, int(k[0])-indexSuffix) {
		return errIndex
	}
	n, prefix := int(k[0]), k[1:]
	var buf [maxPlateLen]byte
	p := buf[:n]
	for len(v) > 0 {
		variant, w := binary.Uvarint(v)
		if w <= 0 {
			return errIndex
		}
		v = v[w:]
		for i := len(prefix) - 1; i >= 0; i-- {
			ms := classes.members[prefix[i]]
			if len(ms) == 0 || plate.ConfusionOf(prefix[i]) != prefix[i] {
				return errIndex
			}
			p[i] = ms[variant%uint64(len(ms))]
			variant /= uint64(len(ms))
		}
		if variant != 0 || len(v) < n-len(prefix) {
			return errIndex
		}
		v = v[copy(p[len(prefix):], v):]
		x, w := binary.Uvarint(v)
		e := indexEntry{kind: kindPermit, ref: x >> (posBits + 1), pos: int(x>>1) & posMask}
		if w <= 0 || e.ref == 0 || e.ref > maxRef {
			return errIndex
		}
		if x&1 == 1 {
			e.kind = kindAccount
		}
		fn(p, e)
		v = v[w:]
	}
	return nil
}

// appendIndexEntry appends the entry of plate p (of at most maxPlateLen
// characters) to an index value.
func appendIndexEntry(v []byte, p string, e indexEntry) []byte {
	cut := max(0, len(p)-indexSuffix)
	var variant uint64
	for i := 0; i < cut; i++ {
		variant = variant*uint64(classes.size[p[i]]) + uint64(classes.place[p[i]])
	}
	v = binary.AppendUvarint(v, variant)
	v = append(v, p[cut:]...)
	x := e.ref<<(posBits+1) | uint64(e.pos&posMask)<<1
	if e.kind == kindAccount {
		x |= 1
	}
	return binary.AppendUvarint(v, x)
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
