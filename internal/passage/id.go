package passage

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// ID identifies a passage: 48 bits of milliseconds since the Unix epoch
// and 80 bits that make it unique, written as 26 characters of
// Crockford's base32 (the ULID layout). IDs from one Generator sort in
// the order they were made, also within one millisecond, so the outbox
// keeps passages in order by their IDs and the central system can
// deduplicate by them.
type ID [16]byte

const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// String is the 26-character form.
func (id ID) String() string {
	var out [26]byte
	// 128 bits in 26 groups of 5 bits, the first group holding 3.
	hi := binary.BigEndian.Uint64(id[:8])
	lo := binary.BigEndian.Uint64(id[8:])
	for i := 25; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// IsZero reports whether id is unset.
func (id ID) IsZero() bool { return id == ID{} }

// Time is when the ID was made, to the millisecond.
func (id ID) Time() time.Time {
	var b [8]byte
	copy(b[2:], id[:6])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:])))
}

var errID = errors.New("passage: an id is 26 characters of Crockford base32")

// ParseID reads the 26-character form.
func ParseID(s string) (ID, error) {
	if len(s) != 26 || s[0] > '7' {
		return ID{}, errID
	}
	var hi, lo uint64
	for i := 0; i < 26; i++ {
		v := decode(s[i])
		if v < 0 {
			return ID{}, errID
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	var id ID
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id, nil
}

func decode(c byte) int {
	if c >= 'a' && c <= 'z' {
		c -= 'a' - 'A'
	}
	for i := 0; i < len(alphabet); i++ {
		if alphabet[i] == c {
			return i
		}
	}
	return -1
}

// MarshalText writes the 26-character form.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads the 26-character form.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Generator makes IDs that increase: within one millisecond, or when the
// clock steps back, the next ID is the last one plus one.
type Generator struct {
	mu   sync.Mutex
	last ID
}

// New returns a new ID for a passage at now.
func (g *Generator) New(now time.Time) ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	var id ID
	ms := uint64(now.UnixMilli())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ms)
	copy(id[:6], b[2:])
	rand.Read(id[6:])
	if !g.last.IsZero() && g.last.Time().UnixMilli() >= int64(ms) {
		// Same millisecond, or the clock stepped back: stay in order.
		id = g.last
		increment(&id)
	}
	g.last = id
	return id
}

func increment(id *ID) {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			return
		}
	}
}
