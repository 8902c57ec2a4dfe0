package presence

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"anprd/internal/binfield"
)

// A vehicle is stored in a compact binary form: every decision reads the
// vehicles bucket, so its size is resident memory. The facility and plate
// are the key's (facility 0 confusion key 0 plate) and are not repeated.
//
//	version 1, entered (varint Unix ns), zone offset (varint s), lane,
//	class, permit, pool, account, not counted (byte), source, flags
//
// Strings are a uvarint length and bytes. Records written as JSON by an
// older anprd start with '{' and are still read; they are written in this
// form the next time they change.
const codecVersion = 1

var errShort = errors.New("presence: stored vehicle is truncated")

func encode(v *Vehicle) []byte {
	b := make([]byte, 0, 32+len(v.Lane)+len(v.Class)+len(v.Permit)+len(v.Pool)+len(v.Account)+len(v.Source))
	b = append(b, codecVersion)
	b = binary.AppendVarint(b, v.Entered.UnixNano())
	_, off := v.Entered.Zone()
	b = binary.AppendVarint(b, int64(off))
	for _, s := range []string{v.Lane, v.Class, v.Permit, v.Pool, v.Account} {
		b = appendStr(b, s)
	}
	nc := byte(0)
	if v.NotCounted {
		nc = 1
	}
	b = append(b, nc)
	b = appendStr(b, string(v.Source))
	b = binary.AppendUvarint(b, uint64(len(v.Flags)))
	for _, f := range v.Flags {
		b = appendStr(b, f)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decode reads the vehicle stored under key k.
func decode(k, b []byte) (*Vehicle, error) {
	v, err := decodeValue(k, b)
	if err != nil {
		return nil, fmt.Errorf("presence: stored vehicle %q: %w", k, err)
	}
	return v, nil
}

func decodeValue(k, b []byte) (*Vehicle, error) {
	if len(b) > 0 && b[0] == '{' {
		v := new(Vehicle)
		return v, json.Unmarshal(b, v)
	}
	i, j := bytes.IndexByte(k, 0), bytes.LastIndexByte(k, 0)
	if i <= 0 || j == len(k)-1 {
		return nil, errors.New("key is not facility, confusion key, plate")
	}
	if len(b) < 1 || b[0] != codecVersion {
		return nil, fmt.Errorf("unknown format %x", b[:min(1, len(b))])
	}
	r := binfield.Reader{S: string(b[1:]), Short: errShort}
	v := &Vehicle{Facility: string(k[:i]), Plate: string(k[j+1:])}
	ns, off := r.Varint(), r.Varint()
	if off < -24*3600 || off > 24*3600 {
		r.Fail()
	}
	v.Entered = time.Unix(0, ns).UTC()
	if off != 0 && r.Err == nil {
		v.Entered = v.Entered.In(time.FixedZone("", int(off)))
	}
	v.Lane, v.Class, v.Permit, v.Pool, v.Account = r.Str(), r.Str(), r.Str(), r.Str(), r.Str()
	switch r.Byte() {
	case 0:
	case 1:
		v.NotCounted = true
	default:
		r.Fail()
	}
	v.Source = Source(r.Str())
	if n := r.Uvarint(); n > 0 {
		if n > uint64(len(r.S)) {
			r.Fail()
		} else {
			v.Flags = make([]string, n)
			for i := range v.Flags {
				v.Flags[i] = r.Str()
			}
		}
	}
	if r.Err == nil && len(r.S) != 0 {
		r.Err = fmt.Errorf("%d bytes too many", len(r.S))
	}
	if r.Err != nil {
		return nil, r.Err
	}
	return v, nil
}
