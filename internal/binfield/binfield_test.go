package binfield

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

var errShort = errors.New("short")

func TestRoundTrip(t *testing.T) {
	var b []byte
	b = append(b, 7)
	b = binary.AppendUvarint(b, math.MaxUint64)
	b = binary.AppendVarint(b, math.MinInt64)
	b = binary.AppendVarint(b, -1)
	b = binary.AppendUvarint(b, 3)
	b = append(b, "abc"...)
	b = binary.AppendUvarint(b, 0)
	r := Reader{S: string(b), Short: errShort}
	if c, u, v, w, s, e := r.Byte(), r.Uvarint(), r.Varint(), r.Varint(), r.Str(), r.Str(); c != 7 || u != math.MaxUint64 ||
		v != math.MinInt64 || w != -1 || s != "abc" || e != "" || r.Err != nil || r.S != "" {
		t.Errorf("read %d %d %d %d %q %q, err %v, left %q", c, u, v, w, s, e, r.Err, r.S)
	}
}

func TestBad(t *testing.T) {
	for name, s := range map[string]string{
		"empty":            "",
		"varint cut":       "\x80",
		"over 64 bits":     "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
		"string too short": "\x05abc",
	} {
		r := Reader{S: s, Short: errShort}
		switch name {
		case "empty":
			r.Byte()
		case "string too short":
			r.Str()
		default:
			r.Uvarint()
		}
		if r.Err != errShort {
			t.Errorf("%s: err %v, want the reader's Short", name, r.Err)
		}
	}
	// The first error sticks, and later reads give zero values.
	first := errors.New("first")
	r := Reader{S: "\x01x", Short: errShort, Err: first}
	if r.Byte() != 0 || r.Str() != "" || r.Err != first {
		t.Errorf("a read after an error changed it: %v", r.Err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("\x03abc\x80\x01"))
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := Reader{S: string(b), Short: errShort}
		for r.Err == nil && r.S != "" {
			before := len(r.S)
			switch r.Byte() % 3 {
			case 0:
				r.Uvarint()
			case 1:
				r.Varint()
			case 2:
				r.Str()
			}
			if r.Err == nil && len(r.S) >= before {
				t.Fatalf("a read consumed nothing")
			}
		}
		if r.Err != nil && r.Err != errShort {
			t.Fatalf("err %v", r.Err)
		}
	})
}
