// Package permitsync keeps the box's permit data in step with the central
// system: numbered deltas applied all or nothing, full snapshots received
// in chunks beside the live data and swapped in only when their count and
// digest check out. A gap, a bad snapshot or a restart makes the box ask
// for a resync; the last sequence number applied lives in the permit
// store and survives restarts.
//
// Every message must be signed by the central system (Ed25519 over topic
// and body, docs/protocol.md): anything unsigned, signed with another key
// or wrongly signed is refused, counted and logged, and changes nothing,
// so a broker that is broken into cannot add a permit and so cannot open
// a barrier.
//
// This package must not decide access or read the clock except through
// the now it is given; the permit store does the storing.
package permitsync

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"anprd/internal/permit"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
)

// Sender publishes small messages (requests, state) without following
// their delivery; *mqtt.Client is one.
type Sender interface {
	Send(topic string, qos byte, retain bool, payload []byte) error
}

// Options configure a Sync.
type Options struct {
	Topics protocol.Topics
	// Key is the central system's public key; nil refuses everything.
	Key ed25519.PublicKey
	Now func() time.Time
	Log zerolog.Logger
	// RequestEvery is the least time between two resync requests, and how
	// long an unanswered one waits before it is sent again; default 30 s.
	RequestEvery time.Duration
	// Stall: a snapshot with no chunk for this long is given up; default
	// 2 min.
	Stall time.Duration
	// MaxPending bounds the deltas kept while a snapshot loads; default
	// 1000.
	MaxPending int
	Metrics    *Metrics
}

// Sync applies what the central system sends.
type Sync struct {
	o     Options
	store *permit.Store
	send  Sender
	m     *Metrics

	mu          sync.Mutex
	load        *loading
	pending     []*permit.Batch // deltas that came during a snapshot
	overflow    bool            // pending overflowed: resync after the snapshot
	waiting     string          // the reason of an unanswered request
	lastRequest time.Time
	lastApplied time.Time
}

type loading struct {
	id      string
	seq     uint64
	chunks  int
	records int
	digest  string
	next    int
	count   int
	sum     *protocol.Digest
	sn      *permit.Snapshot
	last    time.Time // when the last chunk came
}

// New returns a Sync for store.
func New(store *permit.Store, send Sender, o Options) *Sync {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RequestEvery <= 0 {
		o.RequestEvery = 30 * time.Second
	}
	if o.Stall <= 0 {
		o.Stall = 2 * time.Minute
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 1000
	}
	m := o.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	if seq, err := store.Seq(); err == nil {
		m.seq.Set(float64(seq))
	}
	return &Sync{o: o, store: store, send: send, m: m}
}

// Filters are the topics to subscribe to, all in one ordered subscription.
func (s *Sync) Filters() []string {
	t := s.o.Topics
	return []string{t.SiteDelta(), t.Delta(), t.Snapshot()}
}

// Handle takes one received message. It is called from one goroutine, in
// the order the messages came.
func (s *Sync) Handle(topic string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.o.Topics
	var err error
	switch topic {
	case t.SiteDelta(), t.Delta():
		err = s.delta(topic, payload)
	case t.Snapshot():
		err = s.chunk(topic, payload)
	default:
		err = &protocol.Reject{Reason: protocol.RejectInvalid, Err: fmt.Errorf("not a sync topic")}
	}
	if err != nil {
		r := protocol.ReasonOf(err)
		s.m.rejected.WithLabelValues(string(r)).Inc()
		ev := s.o.Log.Warn()
		if r == protocol.RejectStale {
			ev = s.o.Log.Debug()
		}
		ev.Str("topic", topic).Str("reason", string(r)).Err(err).Msg("permit sync message refused")
	}
}

func (s *Sync) delta(topic string, payload []byte) error {
	body, err := protocol.Verify(s.o.Key, topic, payload)
	if err != nil {
		return err
	}
	b, err := protocol.DecodeDelta(body)
	if err != nil {
		return err
	}
	if s.load != nil {
		if len(s.pending) >= s.o.MaxPending {
			s.overflow = true
			return &protocol.Reject{Reason: protocol.RejectGap, Err: fmt.Errorf("delta %d came while a snapshot loads and %d wait already", b.Seq, len(s.pending))}
		}
		s.pending = append(s.pending, b)
		return nil
	}
	return s.apply(b)
}

// apply applies one delta; a gap asks for a resync.
func (s *Sync) apply(b *permit.Batch) error {
	err := s.store.Apply(b)
	var gap *permit.ErrGap
	switch {
	case errors.As(err, &gap) && gap.Stale():
		return &protocol.Reject{Reason: protocol.RejectStale, Err: err}
	case errors.As(err, &gap):
		s.request(protocol.RequestGap, err.Error(), false)
		return &protocol.Reject{Reason: protocol.RejectGap, Err: err}
	case err != nil:
		// Signed, but the store will not take it (a permit naming an
		// unknown product, say): later deltas cannot follow it either.
		s.request(protocol.RequestGap, "delta refused: "+err.Error(), false)
		return &protocol.Reject{Reason: protocol.RejectInvalid, Err: err}
	}
	s.m.applied.WithLabelValues("delta").Inc()
	s.m.seq.Set(float64(b.Seq))
	s.applied()
	s.o.Log.Debug().Uint64("seq", b.Seq).Int("changes", len(b.Changes)).Msg("permit delta applied")
	return nil
}

// applied records a successful apply: nothing is awaited any more.
func (s *Sync) applied() {
	s.waiting = ""
	s.lastApplied = s.o.Now()
	s.publishState()
}

func (s *Sync) chunk(topic string, payload []byte) error {
	body, err := protocol.Verify(s.o.Key, topic, payload)
	if err != nil {
		return err
	}
	c, changes, err := protocol.DecodeSnapshotChunk(body)
	if err != nil {
		return err
	}
	seq, err := s.store.Seq()
	if err != nil {
		return err
	}
	if c.Seq < seq {
		return &protocol.Reject{Reason: protocol.RejectStale, Err: fmt.Errorf("snapshot %s at seq %d is older than the data applied (%d)", c.Snapshot, c.Seq, seq)}
	}
	l := s.load
	if c.Chunk == 0 && l != nil && l.id == c.Snapshot && l.next > 0 && c.Digest == l.digest {
		// Chunk 0 again (a redelivery): the load goes on.
		return &protocol.Reject{Reason: protocol.RejectStale, Err: fmt.Errorf("chunk 0 of snapshot %s again", c.Snapshot)}
	}
	if c.Chunk == 0 {
		if l != nil {
			s.o.Log.Warn().Str("snapshot", l.id).Str("new", c.Snapshot).Msg("snapshot given up for a newer one")
			s.abort()
		}
		sn, err := s.store.NewSnapshot()
		if err != nil {
			return err
		}
		l = &loading{id: c.Snapshot, seq: c.Seq, chunks: c.Chunks, records: c.Records, digest: c.Digest, sum: protocol.NewDigest(), sn: sn}
		s.load = l
		s.o.Log.Info().Str("snapshot", c.Snapshot).Uint64("seq", c.Seq).Int("chunks", c.Chunks).Int("records", c.Records).Msg("permit snapshot loading")
	} else {
		switch {
		case l == nil || l.id != c.Snapshot:
			return &protocol.Reject{Reason: protocol.RejectStale, Err: fmt.Errorf("chunk %d of snapshot %s, which is not loading", c.Chunk, c.Snapshot)}
		case c.Chunk < l.next:
			return &protocol.Reject{Reason: protocol.RejectStale, Err: fmt.Errorf("chunk %d of snapshot %s again", c.Chunk, c.Snapshot)}
		case c.Seq != l.seq || c.Chunks != l.chunks || c.Records != l.records || c.Digest != l.digest:
			s.abort()
			s.request(protocol.RequestSnapshot, "chunks of snapshot "+c.Snapshot+" disagree", true)
			return &protocol.Reject{Reason: protocol.RejectDigest, Err: fmt.Errorf("chunk %d of snapshot %s does not agree with chunk 0", c.Chunk, c.Snapshot)}
		case c.Chunk > l.next:
			s.abort()
			s.request(protocol.RequestSnapshot, fmt.Sprintf("chunk %d of snapshot %s missing", l.next, c.Snapshot), true)
			return &protocol.Reject{Reason: protocol.RejectGap, Err: fmt.Errorf("chunk %d of snapshot %s came after %d", c.Chunk, c.Snapshot, l.next-1)}
		}
	}
	l.sum.Add(c.Changes)
	l.count += len(changes)
	l.last = s.o.Now()
	if l.count > l.records {
		s.abort()
		s.request(protocol.RequestSnapshot, "snapshot "+c.Snapshot+" has more records than it says", true)
		return &protocol.Reject{Reason: protocol.RejectDigest, Err: fmt.Errorf("snapshot %s: %d records so far, it says %d", c.Snapshot, l.count, l.records)}
	}
	if err := l.sn.Add(changes); err != nil {
		s.abort()
		s.request(protocol.RequestSnapshot, err.Error(), true)
		return &protocol.Reject{Reason: protocol.RejectInvalid, Err: err}
	}
	l.next = c.Chunk + 1
	s.m.chunks.Inc()
	if l.next < l.chunks {
		// The progress lets the central system pace the chunks.
		s.publishState()
		return nil
	}
	// The last chunk: count and digest, then the swap.
	if l.count != l.records || l.sum.String() != l.digest {
		got := l.sum.String()
		s.abort()
		s.request(protocol.RequestSnapshot, "snapshot "+c.Snapshot+": count or digest wrong", true)
		return &protocol.Reject{Reason: protocol.RejectDigest, Err: fmt.Errorf("snapshot %s: %d records and %s, it says %d and %s", c.Snapshot, l.count, got, l.records, l.digest)}
	}
	if err := l.sn.Commit(l.seq); err != nil {
		s.load = nil
		s.request(protocol.RequestSnapshot, err.Error(), true)
		return &protocol.Reject{Reason: protocol.RejectInvalid, Err: err}
	}
	s.load = nil
	s.m.applied.WithLabelValues("snapshot").Inc()
	s.m.seq.Set(float64(l.seq))
	s.o.Log.Info().Str("snapshot", l.id).Uint64("seq", l.seq).Int("records", l.count).Msg("permit snapshot applied")
	s.applied()
	// Deltas that came meanwhile and follow the snapshot.
	pending, overflow := s.pending, s.overflow
	s.pending, s.overflow = nil, false
	for _, b := range pending {
		if b.Seq <= l.seq {
			continue
		}
		if err := s.apply(b); err != nil {
			s.m.rejected.WithLabelValues(string(protocol.ReasonOf(err))).Inc()
			s.o.Log.Warn().Uint64("seq", b.Seq).Err(err).Msg("delta held during the snapshot refused")
			break
		}
	}
	if overflow {
		s.request(protocol.RequestGap, "deltas were lost while the snapshot loaded", true)
	}
	return nil
}

func (s *Sync) abort() {
	if s.load != nil {
		s.load.sn.Abort()
		s.load = nil
	}
	s.pending, s.overflow = nil, false
	s.publishState()
}

// request asks the central system for data after the applied seq, at
// most once per RequestEvery unless force.
func (s *Sync) request(reason, detail string, force bool) {
	now := s.o.Now()
	if !force && s.waiting != "" && now.Sub(s.lastRequest) < s.o.RequestEvery {
		return
	}
	seq, err := s.store.Seq()
	if err != nil {
		s.o.Log.Error().Err(err).Msg("permit sync: reading the sequence number")
		return
	}
	// A connect or a command asks once; a gap or a failed snapshot
	// means the data is known to be behind, so it is asked again until
	// answered.
	if reason == protocol.RequestGap || reason == protocol.RequestSnapshot {
		s.waiting = reason
	}
	s.lastRequest = now
	s.m.requests.WithLabelValues(reason).Inc()
	b, _ := json.Marshal(protocol.SyncRequest{Time: now, Seq: seq, Reason: reason, Detail: detail})
	if err := s.send.Send(s.o.Topics.SyncRequest(), protocol.QoSAtLeastOnce, false, b); err != nil {
		s.o.Log.Debug().Err(err).Str("reason", reason).Msg("permit sync request not sent; it is sent again when connected")
		return
	}
	s.o.Log.Info().Str("reason", reason).Uint64("seq", seq).Str("detail", detail).Msg("permit resync requested")
	s.publishState()
}

// Connected sends the state and asks for what follows the applied seq
// (the central system answers with deltas or a snapshot). The broker
// client's connect hook calls it.
func (s *Sync) Connected() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.request(protocol.RequestConnect, "", true)
}

// Resync asks for a resync now (a command from the central system).
func (s *Sync) Resync(detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.request(protocol.RequestCommand, detail, true)
}

// State is where the data stands.
func (s *Sync) State() protocol.SyncState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state()
}

func (s *Sync) state() protocol.SyncState {
	seq, _ := s.store.Seq()
	st := protocol.SyncState{Time: s.o.Now(), Seq: seq, Waiting: s.waiting}
	if l := s.load; l != nil {
		st.Loading = &protocol.Loading{Snapshot: l.id, Seq: l.seq, Chunks: l.chunks, Received: l.next}
	}
	return st
}

func (s *Sync) publishState() {
	b, _ := json.Marshal(s.state())
	s.send.Send(s.o.Topics.SyncState(), protocol.QoSAtLeastOnce, true, b)
}

// Run gives up stalled snapshots and repeats unanswered requests, until
// ctx ends.
func (s *Sync) Run(ctx context.Context) error {
	t := time.NewTicker(max(s.o.Stall/12, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			if s.load != nil {
				s.load.sn.Abort()
				s.load = nil
			}
			s.mu.Unlock()
			return nil
		case <-t.C:
			s.Tick()
		}
	}
}

// Tick is one round of Run's checks.
func (s *Sync) Tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now()
	if l := s.load; l != nil && now.Sub(l.last) > s.o.Stall {
		s.o.Log.Warn().Str("snapshot", l.id).Int("received", l.next).Int("chunks", l.chunks).Msg("permit snapshot stalled; given up")
		s.abort()
		s.request(protocol.RequestSnapshot, "snapshot "+l.id+" stalled", true)
		return
	}
	if s.waiting != "" && s.load == nil && now.Sub(s.lastRequest) >= s.o.RequestEvery {
		s.request(s.waiting, "no answer yet", true)
	}
}
