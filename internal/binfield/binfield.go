// Package binfield decodes the fields of anprd's compact stored records
// (the permit store's and presence's): single bytes, unsigned and zig-zag
// varints as encoding/binary writes them, and length-prefixed strings.
//
// A Reader decodes from one string, so the strings it returns are
// substrings of it and cost no allocation; the first error sticks and
// every later read returns a zero value. It knows nothing of the records'
// layouts, which stay with their packages.
package binfield

import "encoding/binary"

// Reader reads fields from S. Short is the error a truncated or
// malformed field gives (each store names itself in it).
type Reader struct {
	S     string
	Short error
	Err   error
}

// Fail records Short, unless an error is already recorded.
func (r *Reader) Fail() {
	if r.Err == nil {
		r.Err = r.Short
	}
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.Err != nil || len(r.S) < 1 {
		r.Fail()
		return 0
	}
	c := r.S[0]
	r.S = r.S[1:]
	return c
}

// Uvarint reads an unsigned varint (binary.AppendUvarint).
func (r *Reader) Uvarint() uint64 {
	if r.Err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for i := 0; i < len(r.S) && i < binary.MaxVarintLen64; i++ {
		c := r.S[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflows 64 bits
			}
			r.S = r.S[i+1:]
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	r.Fail()
	return 0
}

// Varint reads a zig-zag varint (binary.AppendVarint).
func (r *Reader) Varint() int64 {
	ux := r.Uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// Str reads a string behind its length as an unsigned varint.
func (r *Reader) Str() string {
	n := r.Uvarint()
	if r.Err != nil || uint64(len(r.S)) < n {
		r.Fail()
		return ""
	}
	s := r.S[:n]
	r.S = r.S[n:]
	return s
}
