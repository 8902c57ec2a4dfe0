package permit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Permits and accounts are stored in a compact binary form rather than
// JSON: a million of them make the file about half the size, and the
// decision decodes one with a few small allocations instead of JSON's
// reflection. The first byte is the kind, the second the format version.
//
//	permit:  id tenant product status from until plates concurrency pool benefit reference
//	account: id kind company cost_centre benefit plates concurrency blocked
//
// Strings are a uvarint length and bytes; a moment is a tag (0 none,
// 1 date, 2 instant) and a varint (Unix seconds of the date at 00:00 UTC,
// or Unix nanoseconds of the instant).
const codecVersion = 1

var errShort = errors.New("permit: stored record is truncated")

var statusCodes = []Status{Active, AwaitingPayment, Blocked, Cancelled}

func encodePermit(p *Permit) []byte {
	b := make([]byte, 0, 64+len(p.ID)+len(p.Tenant)+len(p.Product)+8*len(p.Plates))
	b = append(b, kindPermit, codecVersion)
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
	b = appendStrs(b, p.Plates)
	b = binary.AppendUvarint(b, uint64(p.Concurrency))
	b = appendStr(b, p.Pool)
	b = appendStr(b, p.BenefitGroup)
	return appendStr(b, p.Reference)
}

func encodeAccount(a *Account) []byte {
	b := make([]byte, 0, 48+len(a.ID)+8*len(a.Plates))
	b = append(b, kindAccount, codecVersion)
	b = appendStr(b, a.ID)
	b = appendStr(b, string(a.Kind))
	b = appendStr(b, a.Company)
	b = appendStr(b, a.CostCentre)
	b = appendStr(b, a.BenefitGroup)
	b = appendStrs(b, a.Plates)
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
		return binary.AppendVarint(append(b, 1), m.t.Unix())
	default:
		return binary.AppendVarint(append(b, 2), m.t.UnixNano())
	}
}

// reader decodes a record; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errShort
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) strs() []string {
	n := r.uvarint()
	if r.err != nil || n > maxPlates {
		r.err = errShort
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

func (r *reader) moment() *Moment {
	tag := r.byte()
	if tag == 0 || r.err != nil {
		return nil
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		return nil
	}
	r.b = r.b[n:]
	if tag == 1 {
		return &Moment{t: time.Unix(v, 0).UTC(), date: true}
	}
	return &Moment{t: time.Unix(0, v).UTC()}
}

func (r *reader) header(kind byte) {
	if k, v := r.byte(), r.byte(); r.err == nil && (k != kind || v != codecVersion) {
		r.err = fmt.Errorf("permit: stored record is kind %q version %d, want %q version %d", k, v, kind, codecVersion)
	}
}

func decodePermit(b []byte) (*Permit, error) {
	r := reader{b: b}
	r.header(kindPermit)
	p := &Permit{ID: r.str(), Tenant: r.str(), Product: r.str()}
	if c := int(r.byte()); c < len(statusCodes) {
		p.Status = statusCodes[c]
	} else {
		r.err = errShort
	}
	if from := r.moment(); from != nil {
		p.ValidFrom = *from
	}
	p.ValidUntil = r.moment()
	p.Plates = r.strs()
	p.Concurrency = int(r.uvarint())
	p.Pool, p.BenefitGroup, p.Reference = r.str(), r.str(), r.str()
	if r.err != nil {
		return nil, r.err
	}
	return p, nil
}

func decodeAccount(b []byte) (*Account, error) {
	r := reader{b: b}
	r.header(kindAccount)
	a := &Account{ID: r.str(), Kind: AccountKind(r.str()), Company: r.str(), CostCentre: r.str(), BenefitGroup: r.str()}
	a.Plates = r.strs()
	a.Concurrency = int(r.uvarint())
	a.Blocked = r.byte() == 1
	if r.err != nil {
		return nil, r.err
	}
	return a, nil
}

// decodePlates reads the plates of a stored permit or account.
func decodePlates(v []byte) ([]string, error) {
	if len(v) < 1 {
		return nil, errShort
	}
	if v[0] == kindPermit {
		p, err := decodePermit(v)
		if err != nil {
			return nil, err
		}
		return p.Plates, nil
	}
	a, err := decodeAccount(v)
	if err != nil {
		return nil, err
	}
	return a.Plates, nil
}
