package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/plate"
)

// RejectReason says why a message was refused; it is the "reason" label
// of the rejection metrics and the reason of a refused command's reply.
type RejectReason string

const (
	RejectTooLarge     RejectReason = "too_large"     // more than MaxPayload
	RejectMalformed    RejectReason = "malformed"     // not the JSON it must be
	RejectUnsigned     RejectReason = "unsigned"      // no envelope, or no signature in it
	RejectNoKey        RejectReason = "no_key"        // this box has no central key configured
	RejectUnknownKey   RejectReason = "unknown_key"   // signed with another key
	RejectBadSignature RejectReason = "bad_signature" // the signature does not verify
	RejectInvalid      RejectReason = "invalid"       // well-formed and signed, but its content is wrong
	RejectStale        RejectReason = "stale"         // older than what is applied (a repeat)
	RejectGap          RejectReason = "gap"           // a delta that does not follow the last one
	RejectDigest       RejectReason = "digest"        // a snapshot whose count or digest is wrong
	RejectExpired      RejectReason = "expired"       // a command older than its maximum age
	RejectReplayed     RejectReason = "replayed"      // a command id seen before
)

// RejectReasons lists every reason, for metrics.
var RejectReasons = []RejectReason{RejectTooLarge, RejectMalformed, RejectUnsigned, RejectNoKey, RejectUnknownKey,
	RejectBadSignature, RejectInvalid, RejectStale, RejectGap, RejectDigest, RejectExpired, RejectReplayed}

// Reject is a refused message.
type Reject struct {
	Reason RejectReason
	Err    error
}

func (r *Reject) Error() string { return string(r.Reason) + ": " + r.Err.Error() }
func (r *Reject) Unwrap() error { return r.Err }

func rejectf(r RejectReason, format string, args ...any) *Reject {
	return &Reject{Reason: r, Err: fmt.Errorf(format, args...)}
}

// ReasonOf is err's RejectReason; invalid for any other error.
func ReasonOf(err error) RejectReason {
	var r *Reject
	if errors.As(err, &r) {
		return r.Reason
	}
	return RejectInvalid
}

// decodeStrict decodes one JSON value into v: unknown fields are errors,
// and nothing may follow it.
func decodeStrict(data []byte, v any) error {
	if len(data) > MaxPayload {
		return fmt.Errorf("%d bytes, more than %d", len(data), MaxPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

func strict(data []byte, v any) error {
	if len(data) > MaxPayload {
		return rejectf(RejectTooLarge, "%d bytes, more than %d", len(data), MaxPayload)
	}
	if err := decodeStrict(data, v); err != nil {
		return &Reject{Reason: RejectMalformed, Err: err}
	}
	return nil
}

// DecodeDelta reads the body of a delta: a permit.Batch.
func DecodeDelta(body []byte) (*permit.Batch, error) {
	if len(body) > MaxPayload {
		return nil, rejectf(RejectTooLarge, "%d bytes, more than %d", len(body), MaxPayload)
	}
	if !json.Valid(body) {
		return nil, rejectf(RejectMalformed, "not JSON")
	}
	b, err := permit.DecodeBatch(body)
	if err != nil {
		return nil, &Reject{Reason: RejectInvalid, Err: err}
	}
	return b, nil
}

// SnapshotChunk is one part of a full data set. Snapshot names the data
// set; Seq is the sequence number it stands at (the next delta is
// Seq+1). Chunks arrive in order, Chunk counting from 0 to Chunks-1.
// Records is the number of changes in all chunks together and Digest
// "sha256:<hex>" of the changes arrays of all chunks, each exactly as it
// stands in its chunk's body, concatenated in order. The box loads the
// chunks beside its live data and swaps only when the last one checks
// out.
type SnapshotChunk struct {
	Snapshot string          `json:"snapshot"`
	Seq      uint64          `json:"seq"`
	Chunk    int             `json:"chunk"`
	Chunks   int             `json:"chunks"`
	Records  int             `json:"records"`
	Digest   string          `json:"digest"`
	Changes  json.RawMessage `json:"changes"`
}

// snapshotDoc is SnapshotChunk as its schema describes it.
type snapshotDoc struct {
	Snapshot string          `json:"snapshot"`
	Seq      uint64          `json:"seq"`
	Chunk    int             `json:"chunk"`
	Chunks   int             `json:"chunks"`
	Records  int             `json:"records"`
	Digest   string          `json:"digest"`
	Changes  []permit.Change `json:"changes"`
}

// MaxChunks bounds a snapshot's chunk count (a sanity limit: 10,000 chunks
// of 10,000 permits is far beyond any garage).
const MaxChunks = 10000

var (
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// DecodeSnapshotChunk reads and checks a snapshot chunk's body and
// decodes its changes.
func DecodeSnapshotChunk(body []byte) (*SnapshotChunk, []permit.Change, error) {
	var c SnapshotChunk
	if err := strict(body, &c); err != nil {
		return nil, nil, err
	}
	switch {
	case !idPattern.MatchString(c.Snapshot):
		return nil, nil, rejectf(RejectInvalid, "snapshot id %q is not 1-64 characters of A-Z a-z 0-9 . _ : -", c.Snapshot)
	case c.Seq == 0:
		return nil, nil, rejectf(RejectInvalid, "seq is required (1 or more)")
	case c.Chunks < 1 || c.Chunks > MaxChunks:
		return nil, nil, rejectf(RejectInvalid, "chunks %d is out of range 1..%d", c.Chunks, MaxChunks)
	case c.Chunk < 0 || c.Chunk >= c.Chunks:
		return nil, nil, rejectf(RejectInvalid, "chunk %d is out of range 0..%d", c.Chunk, c.Chunks-1)
	case c.Records < 0:
		return nil, nil, rejectf(RejectInvalid, "records %d is negative", c.Records)
	case !digestPattern.MatchString(c.Digest):
		return nil, nil, rejectf(RejectInvalid, "digest %q is not sha256:<64 hex digits>", c.Digest)
	case len(c.Changes) == 0:
		return nil, nil, rejectf(RejectInvalid, "changes is required")
	}
	cs, err := permit.DecodeChanges(c.Changes)
	if err != nil {
		return nil, nil, &Reject{Reason: RejectInvalid, Err: err}
	}
	for i := range cs {
		if cs[i].Op != permit.Put {
			return nil, nil, rejectf(RejectInvalid, "changes[%d]: op %q: a snapshot holds puts only", i, cs[i].Op)
		}
	}
	return &c, cs, nil
}

// Digest accumulates a snapshot's digest over its chunks' changes.
type Digest struct{ h hash.Hash }

// NewDigest starts a snapshot digest.
func NewDigest() *Digest { return &Digest{h: sha256.New()} }

// Add adds one chunk's changes array, exactly as it stands in the body.
func (d *Digest) Add(changes []byte) { d.h.Write(changes) }

// String is "sha256:<hex>".
func (d *Digest) String() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }

// MaxText bounds free text in commands (operator, reason).
const MaxText = 200

// DecodeCommand reads and checks a command's body.
func DecodeCommand(body []byte) (*Command, error) {
	var c Command
	if err := strict(body, &c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, &Reject{Reason: RejectInvalid, Err: err}
	}
	return &c, nil
}

// Validate checks what the box relies on.
func (c *Command) Validate() error {
	if !idPattern.MatchString(c.ID) {
		return fmt.Errorf("id %q is not 1-64 characters of A-Z a-z 0-9 . _ : -", c.ID)
	}
	if c.Issued.IsZero() {
		return errors.New("issued is required")
	}
	switch c.Type {
	case CommandOpen:
		if !laneID.MatchString(c.Lane) {
			return fmt.Errorf("lane %q is not a lane id", c.Lane)
		}
		for _, f := range []struct{ name, v string }{{"operator", c.Operator}, {"reason", c.Reason}} {
			if err := checkText(f.v); err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
		}
	case CommandResync, CommandPing:
		if c.Lane != "" || c.Operator != "" || c.Reason != "" {
			return fmt.Errorf("a %s command has no lane, operator or reason", c.Type)
		}
	default:
		return fmt.Errorf("type %q is not open, resync or ping", c.Type)
	}
	return nil
}

// laneID is config's id rule for sites, devices and lanes.
var laneID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func checkText(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return errors.New("required")
	case len(s) > MaxText:
		return fmt.Errorf("longer than %d bytes", MaxText)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("has control characters")
	}
	return nil
}

// DecodeAck reads and checks an acknowledgement's body.
func DecodeAck(body []byte) (*Ack, error) {
	var a Ack
	if err := strict(body, &a); err != nil {
		return nil, err
	}
	if err := a.Validate(); err != nil {
		return nil, &Reject{Reason: RejectInvalid, Err: err}
	}
	return &a, nil
}

// Validate checks what the box relies on.
func (a *Ack) Validate() error {
	switch {
	case !idPattern.MatchString(a.ID):
		return fmt.Errorf("id %q is not 1-64 characters of A-Z a-z 0-9 . _ : -", a.ID)
	case a.Issued.IsZero():
		return errors.New("issued is required")
	case len(a.Passages) == 0:
		return errors.New("passages: at least one passage id is required")
	case len(a.Passages) > MaxAckPassages:
		return fmt.Errorf("passages: %d ids, more than %d", len(a.Passages), MaxAckPassages)
	}
	for i, id := range a.Passages {
		if id.IsZero() {
			return fmt.Errorf("passages[%d]: a zero id", i)
		}
	}
	return nil
}

// DecodePresence reads and checks a presence change from another box.
func DecodePresence(payload []byte) (*Presence, error) {
	var p Presence
	if err := strict(payload, &p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, &Reject{Reason: RejectInvalid, Err: err}
	}
	return &p, nil
}

// Validate checks what a box applying the change relies on.
func (p *Presence) Validate() error {
	switch {
	case p.Passage.IsZero():
		return errors.New("passage is required")
	case !laneID.MatchString(p.Device):
		return fmt.Errorf("device %q is not a device id", p.Device)
	case p.Time.IsZero():
		return errors.New("time is required")
	case p.Facility == "" || len(p.Facility) > 128 || strings.IndexByte(p.Facility, 0) >= 0:
		return fmt.Errorf("facility %q is empty, too long or has a NUL", p.Facility)
	case p.Enter == nil && p.Leave == "":
		return errors.New("neither enter nor leave")
	case p.Leave != "" && plate.Normalize(p.Leave) != p.Leave:
		return fmt.Errorf("leave %q is not a normalised plate", p.Leave)
	}
	if v := p.Enter; v != nil {
		if v.Facility != p.Facility {
			return fmt.Errorf("enter.facility %q is not %q", v.Facility, p.Facility)
		}
		if v.Plate == "" || plate.Normalize(v.Plate) != v.Plate {
			return fmt.Errorf("enter.plate %q is not a normalised plate", v.Plate)
		}
		if v.Entered.IsZero() {
			return errors.New("enter.entered is required")
		}
		for _, id := range []string{v.Permit, v.Pool, v.Account} {
			if strings.IndexByte(id, 0) >= 0 || len(id) > 128 {
				return fmt.Errorf("enter: id %q is too long or has a NUL", id)
			}
		}
	}
	return nil
}

// DecodePassage reads a passage as the central system receives it.
func DecodePassage(payload []byte) (*passage.Passage, error) {
	var p passage.Passage
	if err := strict(payload, &p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, &Reject{Reason: RejectInvalid, Err: err}
	}
	return &p, nil
}

// DecodeReply reads a command reply (for the central side's tools).
func DecodeReply(payload []byte) (*Reply, error) {
	var r Reply
	if err := strict(payload, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
