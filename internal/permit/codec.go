package permit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"anprd/internal/binfield"
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
	binfield.Reader
	format int
}

// strs reads a list of plates.
func (r *reader) strs() []string {
	n := r.Uvarint()
	if r.Err != nil || n > maxPlates || n > uint64(len(r.S)) {
		r.Fail()
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.Str()
	}
	return out
}

// moment reads a moment into m; it reports false for none.
func (r *reader) moment(m *Moment) bool {
	tag := r.Byte()
	if tag == 0 || r.Err != nil {
		return false
	}
	v := r.Varint()
	if r.Err != nil {
		return false
	}
	switch {
	case tag == 1 && r.format == formatV1:
		*m = Moment{t: time.Unix(v, 0).UTC(), date: true}
	case tag == 1:
		if v > 1<<40 || v < -(1<<40) {
			r.Fail()
			return false
		}
		*m = Moment{t: time.Unix(v*secondsPerDay, 0).UTC(), date: true}
	case tag == 2:
		*m = Moment{t: time.Unix(0, v).UTC()}
	default:
		r.Err = fmt.Errorf("permit: stored moment has tag %d", tag)
		return false
	}
	return true
}

func (r *reader) header(kind byte) {
	k := r.Byte()
	if r.format == formatV1 {
		if v := r.Byte(); r.Err == nil && v != 1 {
			r.Err = fmt.Errorf("permit: stored record is version %d, want 1", v)
		}
	}
	if r.Err == nil && k != kind {
		r.Err = fmt.Errorf("permit: stored record is kind %q, want %q", k, kind)
	}
}

func (r *reader) end() {
	if r.Err == nil && len(r.S) != 0 {
		r.Err = fmt.Errorf("permit: stored record has %d bytes too many", len(r.S))
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
	r := reader{Reader: binfield.Reader{S: string(b), Short: errShort}, format: format}
	r.header(kindPermit)
	sp := new(storedPermit)
	p := &sp.p
	p.ID, p.Tenant, p.Product = r.Str(), r.Str(), r.Str()
	if c := int(r.Byte()); c < len(statusCodes) {
		p.Status = statusCodes[c]
	} else {
		r.Fail()
	}
	r.moment(&p.ValidFrom)
	if r.moment(&sp.until) {
		p.ValidUntil = &sp.until
	}
	if format == formatV1 {
		p.Plates = r.strs()
	}
	p.Concurrency = int(r.Uvarint())
	p.Pool, p.BenefitGroup, p.Reference = r.Str(), r.Str(), r.Str()
	r.end()
	if r.Err != nil {
		return nil, r.Err
	}
	return p, nil
}

func decodeAccount(b []byte) (*Account, error) { return decodeAccountAs(b, genFormat) }

func decodeAccountAs(b []byte, format int) (*Account, error) {
	r := reader{Reader: binfield.Reader{S: string(b), Short: errShort}, format: format}
	r.header(kindAccount)
	a := new(Account)
	a.ID, a.Kind, a.Company, a.CostCentre, a.BenefitGroup = r.Str(), AccountKind(r.Str()), r.Str(), r.Str(), r.Str()
	if format == formatV1 {
		a.Plates = r.strs()
	}
	a.Concurrency = int(r.Uvarint())
	switch r.Byte() {
	case 0:
	case 1:
		a.Blocked = true
	default:
		r.Fail()
	}
	r.end()
	if r.Err != nil {
		return nil, r.Err
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
	r := reader{Reader: binfield.Reader{S: string(b), Short: errShort}, format: genFormat}
	ps := r.strs()
	r.end()
	if r.Err != nil {
		return nil, r.Err
	}
	return ps, nil
}
