package permit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Permits and accounts are stored in a compact binary form rather than
// JSON (the JSON is the wire form, for sync): a decision decodes one with
// two allocations, and a million of them fit in about 50 MB. The first
// byte is the kind; the generation's format (genFormat) says the rest.
//
//	permit:  id tenant product status from until concurrency pool benefit reference
//	account: id kind company cost_centre benefit concurrency blocked
//
// The plates are not in the record: a decision finds the record through
// the plate index, whose entry holds the plate and its place in the
// record's list, so the record's pages need not carry them again. They
// are kept apart, in the plates bucket (a uvarint count and the plates),
// for the tools and for the index's upkeep when a record changes.
//
// Strings are a uvarint length and bytes; a moment is a tag (0 none,
// 1 date, 2 instant) and a zigzag varint: days since 1970-01-01 for a
// date, Unix nanoseconds for an instant. Format 1 (a kind and a version
// byte 1 first, a date as Unix seconds, the plates after valid_until in
// a permit and after benefit in an account) is still read, to convert a
// generation written by an older anprd (Open).
const (
	// genFormat is the layout of the generations this package writes
	// (packed record groups, plates apart, packed plate index with each
	// plate's place, format 2 records).
	genFormat = 2
	// formatV1 is the first layout: one key per record, per plate.
	formatV1 = 1
)

var errShort = errors.New("permit: stored record is truncated")

var statusCodes = []Status{Active, AwaitingPayment, Blocked, Cancelled}

const secondsPerDay = 24 * 60 * 60

func encodePermit(p *Permit) []byte {
	b := make([]byte, 0, 40+len(p.ID)+len(p.Tenant)+len(p.Product)+len(p.Pool)+len(p.BenefitGroup)+len(p.Reference))
	b = append(b, kindPermit)
	b = appendStr(b, p.ID)
	b = appendStr(b, p.Tenant)
	b = appendStr(b, p.Product)
	code := 0
	for i, s := range statusCodes {
		if s == p.Status {
			code = i
		}
	}
	b = append(b, byte(code))
	b = appendMoment(b, &p.ValidFrom)
	b = appendMoment(b, p.ValidUntil)
	b = binary.AppendUvarint(b, uint64(p.Concurrency))
	b = appendStr(b, p.Pool)
	b = appendStr(b, p.BenefitGroup)
	return appendStr(b, p.Reference)
}

func encodeAccount(a *Account) []byte {
	b := make([]byte, 0, 24+len(a.ID)+len(a.Kind)+len(a.Company)+len(a.CostCentre)+len(a.BenefitGroup))
	b = append(b, kindAccount)
	b = appendStr(b, a.ID)
	b = appendStr(b, string(a.Kind))
	b = appendStr(b, a.Company)
	b = appendStr(b, a.CostCentre)
	b = appendStr(b, a.BenefitGroup)
	b = binary.AppendUvarint(b, uint64(a.Concurrency))
	blocked := byte(0)
	if a.Blocked {
		blocked = 1
	}
	return append(b, blocked)
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendStrs(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

func appendMoment(b []byte, m *Moment) []byte {
	switch {
	case m == nil || m.IsZero():
		return append(b, 0)
	case m.date:
		// A date is y-m-d at 00:00 UTC: a whole number of days.
		return binary.AppendVarint(append(b, 1), m.t.Unix()/secondsPerDay)
	default:
		return binary.AppendVarint(append(b, 2), m.t.UnixNano())
	}
}

// reader decodes a record from one string: every string field is a
// substring of it, so a record costs one copy of its bytes however many
// fields it has. The first error sticks.
type reader struct {
	s      string
	format int
	err    error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errShort
	}
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.s) < 1 {
		r.fail()
		return 0
	}
	c := r.s[0]
	r.s = r.s[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for i := 0; i < len(r.s) && i < binary.MaxVarintLen64; i++ {
		c := r.s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflows 64 bits
			}
			r.s = r.s[i+1:]
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	r.fail()
	return 0
}

func (r *reader) varint() int64 {
	ux := r.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.s)) < n {
		r.fail()
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// strs reads a list of plates.
func (r *reader) strs() []string {
	n := r.uvarint()
	if r.err != nil || n > maxPlates || n > uint64(len(r.s)) {
		r.fail()
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

// moment reads a moment into m; it reports false for none.
func (r *reader) moment(m *Moment) bool {
	tag := r.byte()
	if tag == 0 || r.err != nil {
		return false
	}
	v := r.varint()
	if r.err != nil {
		return false
	}
	switch {
	case tag == 1 && r.format == formatV1:
		*m = Moment{t: time.Unix(v, 0).UTC(), date: true}
	case tag == 1:
		if v > 1<<40 || v < -(1<<40) {
			r.fail()
			return false
		}
		*m = Moment{t: time.Unix(v*secondsPerDay, 0).UTC(), date: true}
	case tag == 2:
		*m = Moment{t: time.Unix(0, v).UTC()}
	default:
		r.err = fmt.Errorf("permit: stored moment has tag %d", tag)
		return false
	}
	return true
}

func (r *reader) header(kind byte) {
	k := r.byte()
	if r.format == formatV1 {
		if v := r.byte(); r.err == nil && v != 1 {
			r.err = fmt.Errorf("permit: stored record is version %d, want 1", v)
		}
	}
	if r.err == nil && k != kind {
		r.err = fmt.Errorf("permit: stored record is kind %q, want %q", k, kind)
	}
}

func (r *reader) end() {
	if r.err == nil && len(r.s) != 0 {
		r.err = fmt.Errorf("permit: stored record has %d bytes too many", len(r.s))
	}
}

// storedPermit is a decoded permit with room for what it points to, so
// that decoding one is a single allocation besides its bytes.
type storedPermit struct {
	p     Permit
	until Moment
}

func decodePermit(b []byte) (*Permit, error) { return decodePermitAs(b, genFormat) }

func decodePermitAs(b []byte, format int) (*Permit, error) {
	r := reader{s: string(b), format: format}
	r.header(kindPermit)
	sp := new(storedPermit)
	p := &sp.p
	p.ID, p.Tenant, p.Product = r.str(), r.str(), r.str()
	if c := int(r.byte()); c < len(statusCodes) {
		p.Status = statusCodes[c]
	} else {
		r.fail()
	}
	r.moment(&p.ValidFrom)
	if r.moment(&sp.until) {
		p.ValidUntil = &sp.until
	}
	if format == formatV1 {
		p.Plates = r.strs()
	}
	p.Concurrency = int(r.uvarint())
	p.Pool, p.BenefitGroup, p.Reference = r.str(), r.str(), r.str()
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	return p, nil
}

func decodeAccount(b []byte) (*Account, error) { return decodeAccountAs(b, genFormat) }

func decodeAccountAs(b []byte, format int) (*Account, error) {
	r := reader{s: string(b), format: format}
	r.header(kindAccount)
	a := new(Account)
	a.ID, a.Kind, a.Company, a.CostCentre, a.BenefitGroup = r.str(), AccountKind(r.str()), r.str(), r.str(), r.str()
	if format == formatV1 {
		a.Plates = r.strs()
	}
	a.Concurrency = int(r.uvarint())
	switch r.byte() {
	case 0:
	case 1:
		a.Blocked = true
	default:
		r.fail()
	}
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	return a, nil
}

// encodePlates is a record's plates as the plates bucket holds them.
func encodePlates(ps []string) []byte {
	n := 1
	for _, p := range ps {
		n += 1 + len(p)
	}
	return appendStrs(make([]byte, 0, n), ps)
}

// decodePlates reads a record's plates from the plates bucket.
func decodePlates(b []byte) ([]string, error) {
	r := reader{s: string(b), format: genFormat}
	ps := r.strs()
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	return ps, nil
}
