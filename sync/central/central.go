// Package central is the central system's side of the protocol, as far as
// anprd's own tools need it: signing permit snapshots, deltas and
// commands for a box (anprctl permits push, the tests), reading permit
// data from CSV or JSON files, and counting the passages that arrive by
// id (anprctl passages tail). The operator's real central system does the
// same from docs/protocol.md; this package is the reference for it.
//
// It must not be used by the daemon: a box never signs anything.
package central

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/sync/protocol"
)

// Message is a signed message and where it goes.
type Message struct {
	Topic   string
	Payload []byte
}

// Signer signs for one site.
type Signer struct {
	Key    ed25519.PrivateKey
	Prefix string // topic prefix, e.g. anpr/v1
	Site   string
}

func (s *Signer) topics(device string) protocol.Topics {
	return protocol.Topics{Prefix: s.Prefix, Site: s.Site, Device: device}
}

// Delta signs batch b for every box of the site, or for one box when
// device is not "".
func (s *Signer) Delta(device string, b *permit.Batch) (Message, error) {
	topic := s.topics(device).Delta()
	if device == "" {
		topic = s.topics("x").SiteDelta()
	}
	payload, err := protocol.SignJSON(s.Key, topic, b)
	return Message{Topic: topic, Payload: payload}, err
}

// Snapshot signs the changes (puts only) as a snapshot with sequence
// number seq for device, in chunks of at most chunk changes.
func (s *Signer) Snapshot(device, id string, seq uint64, changes []permit.Change, chunk int) ([]Message, error) {
	if chunk < 1 {
		chunk = 5000
	}
	n := max(1, (len(changes)+chunk-1)/chunk)
	// The digest covers each chunk's changes array as it stands in the
	// body, so marshal the arrays first.
	arrays := make([][]byte, n)
	d := protocol.NewDigest()
	for i := range n {
		part := changes[min(i*chunk, len(changes)):min((i+1)*chunk, len(changes))]
		if part == nil {
			part = []permit.Change{}
		}
		b, err := json.Marshal(part)
		if err != nil {
			return nil, err
		}
		arrays[i] = b
		d.Add(b)
	}
	digest := d.String()
	topic := s.topics(device).Snapshot()
	out := make([]Message, n)
	for i := range n {
		body, err := json.Marshal(protocol.SnapshotChunk{Snapshot: id, Seq: seq, Chunk: i, Chunks: n, Records: len(changes),
			Digest: digest, Changes: arrays[i]})
		if err != nil {
			return nil, err
		}
		payload, err := protocol.Sign(s.Key, topic, body)
		if err != nil {
			return nil, err
		}
		out[i] = Message{Topic: topic, Payload: payload}
	}
	return out, nil
}

// Command signs c for device.
func (s *Signer) Command(device string, c protocol.Command) (Message, error) {
	topic := s.topics(device).Command()
	payload, err := protocol.SignJSON(s.Key, topic, c)
	return Message{Topic: topic, Payload: payload}, err
}

// Counter counts passages by id, as the central system deduplicates them.
type Counter struct {
	mu     sync.Mutex
	seen   map[passage.ID]int
	dups   int
	bad    int
	signal chan struct{}
}

// NewCounter returns an empty counter.
func NewCounter() *Counter {
	return &Counter{seen: map[passage.ID]int{}, signal: make(chan struct{}, 1)}
}

// Add reads one passage message; dup says its id was seen before.
func (c *Counter) Add(payload []byte) (p *passage.Passage, dup bool, err error) {
	p, err = protocol.DecodePassage(payload)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.bad++
		return nil, false, err
	}
	c.seen[p.ID]++
	dup = c.seen[p.ID] > 1
	if dup {
		c.dups++
	}
	select {
	case c.signal <- struct{}{}:
	default:
	}
	return p, dup, nil
}

// Counts are the unique ids, the duplicates and the undecodable messages.
func (c *Counter) Counts() (unique, dups, bad int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen), c.dups, c.bad
}

// Has reports whether id arrived.
func (c *Counter) Has(id passage.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id] > 0
}

// WaitUnique waits until n unique ids arrived or d passed, and returns
// the unique count.
func (c *Counter) WaitUnique(n int, d time.Duration) int {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		u, _, _ := c.Counts()
		if u >= n {
			return u
		}
		select {
		case <-c.signal:
		case <-deadline.C:
			u, _, _ := c.Counts()
			return u
		}
	}
}

// String summarises the counts.
func (c *Counter) String() string {
	u, d, b := c.Counts()
	return fmt.Sprintf("%d unique, %d duplicates, %d undecodable", u, d, b)
}

// SendPaced publishes a snapshot's chunks, never more than ahead chunks
// beyond what the box reports loaded (its sync/state messages, passed in
// on states), then waits until the box reports seq applied. send must
// publish with QoS 1 and wait for the broker's acknowledgement. A box
// whose queue overflowed would drop chunks and ask for a resync, so the
// central system paces a large snapshot this way.
func SendPaced(ctx context.Context, send func(Message) error, states <-chan protocol.SyncState, ms []Message, seq uint64, ahead int) error {
	if ahead < 1 {
		ahead = 4
	}
	loaded := 0
	applied := false
	note := func(st protocol.SyncState) error {
		switch {
		case st.Seq >= seq && st.Loading == nil:
			applied, loaded = true, len(ms)
		case st.Loading != nil && st.Loading.Seq == seq:
			loaded = max(loaded, st.Loading.Received)
		case st.Waiting == protocol.RequestSnapshot:
			return fmt.Errorf("the box gave the snapshot up and asks for another")
		}
		return nil
	}
	for i, m := range ms {
		for i-loaded >= ahead {
			select {
			case st := <-states:
				if err := note(st); err != nil {
					return err
				}
			case <-ctx.Done():
				return fmt.Errorf("chunk %d of %d: the box loaded %d: %w", i, len(ms), loaded, ctx.Err())
			}
		}
		if err := send(m); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	for !applied {
		select {
		case st := <-states:
			if err := note(st); err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for the box to apply seq %d: %w", seq, ctx.Err())
		}
	}
	return nil
}
