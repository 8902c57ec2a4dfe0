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
//	head     uvarint: the variant shifted left by 3, the place shifted
//	         left by 1, and the low bit set for an account. The variant
//	         says which member of its confusion class each of the
//	         plate's first characters is (the key has their classes), as
//	         a number in mixed radix, the last character least
//	         significant: 0 for characters alone in their classes. The
//	         place is the plate's in the record's list of plates, 0..2,
//	         or 3 for a later one, whose place then follows as a uvarint
//	suffix   the plate's last characters, as they are (up to indexSuffix)
//	ref      uvarint: the record's ref
//
// so a plate of seven characters costs a byte or two, its last three and
// its record's ref (a decision reads every entry under a key, and the
// index is a third of the pages it touches). Keys are ordered by length,
// then key, as a snapshot writes them.
const (
	indexSuffix = 3
	// placeEscape in a head says the place follows.
	placeEscape = 3
)

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
	return walkIndexKey(k, v, "", fn)
}

// walkIndexKey is walkIndex of the entries whose plates have the
// plate.ConfusionKey key only, or of all when key is "": the others are
// passed over without spelling out their plates.
func walkIndexKey(k, v []byte, key string, fn func(p []byte, e indexEntry)) error {
	if len(k) < 1 || int(k[0]) > maxPlateLen || len(k) != 1+max(0, int(k[0])-indexSuffix) {
		return errIndex
	}
	n, prefix := int(k[0]), k[1:]
	var buf [maxPlateLen]byte
	p := buf[:n]
	for len(v) > 0 {
		head, w := binary.Uvarint(v)
		if w <= 0 {
			return errIndex
		}
		v = v[w:]
		e := indexEntry{kind: kindPermit, pos: int(head>>1) & 3}
		if head&1 == 1 {
			e.kind = kindAccount
		}
		if e.pos == placeEscape {
			pos, w := binary.Uvarint(v)
			if w <= 0 || pos >= maxPlates {
				return errIndex
			}
			e.pos, v = int(pos), v[w:]
		}
		if len(v) < n-len(prefix) {
			return errIndex
		}
		suffix := v[:n-len(prefix)]
		v = v[len(suffix):]
		e.ref, w = binary.Uvarint(v)
		if w <= 0 || e.ref == 0 || e.ref > maxRef {
			return errIndex
		}
		v = v[w:]
		if key != "" && !sameKey(suffix, key[len(prefix):]) {
			continue
		}
		variant := head >> 3
		for i := len(prefix) - 1; i >= 0; i-- {
			ms := classes.members[prefix[i]]
			switch {
			case len(ms) == 0 || plate.ConfusionOf(prefix[i]) != prefix[i]:
				return errIndex
			case len(ms) == 1:
				p[i] = ms[0]
			default:
				p[i] = ms[variant%uint64(len(ms))]
				variant /= uint64(len(ms))
			}
		}
		if variant != 0 {
			return errIndex
		}
		copy(p[len(prefix):], suffix)
		fn(p, e)
	}
	return nil
}

// appendIndexEntry appends the entry of plate p (of at most maxPlateLen
// characters, at a place below maxPlates) to an index value.
func appendIndexEntry(v []byte, p string, e indexEntry) []byte {
	cut := max(0, len(p)-indexSuffix)
	var variant uint64
	for i := 0; i < cut; i++ {
		variant = variant*uint64(classes.size[p[i]]) + uint64(classes.place[p[i]])
	}
	head := variant<<3 | uint64(min(e.pos, placeEscape))<<1
	if e.kind == kindAccount {
		head |= 1
	}
	v = binary.AppendUvarint(v, head)
	if e.pos >= placeEscape {
		v = binary.AppendUvarint(v, uint64(e.pos))
	}
	v = append(v, p[cut:]...)
	return binary.AppendUvarint(v, e.ref)
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
