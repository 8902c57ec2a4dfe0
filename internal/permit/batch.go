package permit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"anprd/internal/plate"
)

// Op is what a Change does.
type Op string

const (
	Put    Op = "put"    // create or replace the record
	Delete Op = "delete" // remove it; the record need only carry its key
)

// Change is one record put or deleted. Exactly one of the record fields
// is set. A delete carries only the record's key: the id, or the plate of
// a block list entry.
type Change struct {
	Op       Op        `json:"op"`
	Facility *Facility `json:"facility,omitempty"`
	Product  *Product  `json:"product,omitempty"`
	Permit   *Permit   `json:"permit,omitempty"`
	Pool     *Pool     `json:"pool,omitempty"`
	Account  *Account  `json:"account,omitempty"`
	Block    *Block    `json:"block,omitempty"`
	Closure  *Closure  `json:"closure,omitempty"`
}

// Batch is a numbered set of changes that applies entirely or not at all.
// Seq follows the last batch applied by one; sync asks for a resync when
// the store refuses a gap.
type Batch struct {
	Seq     uint64   `json:"seq"`
	Changes []Change `json:"changes"`
}

// maxBatchBytes bounds DecodeBatch; sync splits anything larger (and sends
// a full data set as a snapshot in chunks).
const maxBatchBytes = 16 << 20

// DecodeBatch reads a batch from JSON as sync receives it: strictly
// (unknown fields are errors, one JSON value only), with plates normalised
// the way the reader spells them, then Validate.
func DecodeBatch(data []byte) (*Batch, error) {
	if len(data) > maxBatchBytes {
		return nil, fmt.Errorf("permit batch: %d bytes, more than %d", len(data), maxBatchBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Batch
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("permit batch: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("permit batch: more than one JSON value")
	}
	b.normalize()
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// DecodeChanges reads a JSON array of changes, as a snapshot chunk carries
// them, by DecodeBatch's rules: strictly, plates normalised, each change
// validated (the error names it by index).
func DecodeChanges(data []byte) ([]Change, error) {
	if len(data) > maxBatchBytes {
		return nil, fmt.Errorf("permit changes: %d bytes, more than %d", len(data), maxBatchBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cs []Change
	if err := dec.Decode(&cs); err != nil {
		return nil, fmt.Errorf("permit changes: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("permit changes: more than one JSON value")
	}
	b := Batch{Changes: cs}
	b.normalize()
	for i := range cs {
		if err := cs[i].Validate(); err != nil {
			return nil, fmt.Errorf("permit changes[%d]: %w", i, err)
		}
	}
	return cs, nil
}

// normalize spells every plate as plate.Normalize does, so "ab 12345"
// from a web form is the AB12345 the camera reads.
func (b *Batch) normalize() {
	for i := range b.Changes {
		c := &b.Changes[i]
		switch {
		case c.Permit != nil:
			normPlates(c.Permit.Plates)
		case c.Account != nil:
			normPlates(c.Account.Plates)
		case c.Block != nil:
			c.Block.Plate = plate.Normalize(c.Block.Plate)
		}
	}
}

func normPlates(ps []string) {
	for i, p := range ps {
		ps[i] = plate.Normalize(p)
	}
}

// Validate checks every change; the error names the change by index.
func (b *Batch) Validate() error {
	if b.Seq == 0 {
		return fmt.Errorf("permit batch: seq is required (the first batch is 1)")
	}
	for i := range b.Changes {
		if err := b.Changes[i].Validate(); err != nil {
			return fmt.Errorf("permit batch %d: changes[%d]: %w", b.Seq, i, err)
		}
	}
	return nil
}

// Validate checks c: one record, and for a put a valid one.
func (c *Change) Validate() error {
	n := 0
	for _, set := range []bool{c.Facility != nil, c.Product != nil, c.Permit != nil, c.Pool != nil,
		c.Account != nil, c.Block != nil, c.Closure != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errNoRecord
	}
	switch c.Op {
	case Put:
		return c.validatePut()
	case Delete:
		if c.Block != nil {
			return checkPlate("block list entry", c.Block.Plate)
		}
		return checkID(c.kind(), c.id())
	default:
		return fmt.Errorf("op %q is not put or delete", c.Op)
	}
}

func (c *Change) validatePut() error {
	switch {
	case c.Facility != nil:
		return c.Facility.Validate()
	case c.Product != nil:
		return c.Product.Validate()
	case c.Permit != nil:
		return c.Permit.Validate()
	case c.Pool != nil:
		return c.Pool.Validate()
	case c.Account != nil:
		return c.Account.Validate()
	case c.Block != nil:
		return c.Block.Validate()
	default:
		return c.Closure.Validate()
	}
}

// kind names the record type, as errors and bucket names do.
func (c *Change) kind() string {
	switch {
	case c.Facility != nil:
		return "facility"
	case c.Product != nil:
		return "product"
	case c.Permit != nil:
		return "permit"
	case c.Pool != nil:
		return "pool"
	case c.Account != nil:
		return "account"
	case c.Block != nil:
		return "block list entry"
	default:
		return "closure"
	}
}

// id is the record's key.
func (c *Change) id() string {
	switch {
	case c.Facility != nil:
		return c.Facility.ID
	case c.Product != nil:
		return c.Product.ID
	case c.Permit != nil:
		return c.Permit.ID
	case c.Pool != nil:
		return c.Pool.ID
	case c.Account != nil:
		return c.Account.ID
	case c.Block != nil:
		return c.Block.Plate
	default:
		return c.Closure.ID
	}
}
