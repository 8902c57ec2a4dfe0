package permitsync

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"anprd/internal/permit"
	"anprd/internal/permit/permitgen"
	"anprd/internal/permit/permittest"
	"anprd/sync/central"
	"anprd/sync/protocol"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

var topics = protocol.Topics{Prefix: "anpr/v1", Site: "p1", Device: "box-1"}

// sent records what the sync publishes.
type sent struct {
	mu   sync.Mutex
	msgs []central.Message
	down bool
}

func (s *sent) Send(topic string, qos byte, retain bool, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	s.msgs = append(s.msgs, central.Message{Topic: topic, Payload: payload})
	return nil
}

var errDown = bytes.ErrTooLarge // any error: "not connected"

func (s *sent) requests() []protocol.SyncRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []protocol.SyncRequest
	for _, m := range s.msgs {
		if m.Topic == topics.SyncRequest() {
			var r protocol.SyncRequest
			json.Unmarshal(m.Payload, &r)
			out = append(out, r)
		}
	}
	return out
}

func (s *sent) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.msgs) }

type fixture struct {
	s      *Sync
	store  *permit.Store
	out    *sent
	signer *central.Signer
	log    *bytes.Buffer
	m      *Metrics
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	store, _ := permittest.Store(t)
	f := &fixture{store: store, out: &sent{}, signer: &central.Signer{Key: priv, Prefix: "anpr/v1", Site: "p1"},
		log: new(bytes.Buffer), m: NewMetrics(prometheus.NewRegistry()), now: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)}
	f.s = New(store, f.out, Options{Topics: topics, Key: pub, Log: zerolog.New(f.log), Metrics: f.m,
		Now: func() time.Time { return f.now }, Stall: time.Minute})
	return f
}

func (f *fixture) seq(t *testing.T) uint64 {
	t.Helper()
	s, err := f.store.Seq()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) rejected(r protocol.RejectReason) float64 {
	return testutil.ToFloat64(f.m.rejected.WithLabelValues(string(r)))
}

func base() []permit.Change { return permitgen.Base() }

func permits(lo, hi int) []permit.Change {
	var cs []permit.Change
	for i := lo; i < hi; i++ {
		cs = append(cs, permit.Change{Op: permit.Put, Permit: permitgen.Permit(i)})
	}
	return cs
}

func (f *fixture) delta(t *testing.T, seq uint64, cs []permit.Change) central.Message {
	t.Helper()
	m, err := f.signer.Delta("", &permit.Batch{Seq: seq, Changes: cs})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fixture) permitCount(t *testing.T) int {
	t.Helper()
	var n int
	f.store.View(func(v *permit.View) error { n = v.Counts().Permits; return nil })
	return n
}

func TestDeltas(t *testing.T) {
	f := newFixture(t)
	m := f.delta(t, 1, append(base(), permits(0, 10)...))
	f.s.Handle(m.Topic, m.Payload)
	if f.seq(t) != 1 || f.permitCount(t) != 10 {
		t.Fatalf("after delta 1: seq %d, %d permits; log %s", f.seq(t), f.permitCount(t), f.log)
	}
	if st := f.s.State(); st.Seq != 1 || st.Waiting != "" {
		t.Errorf("state %+v", st)
	}
	// The same delta again is stale, harmless.
	f.s.Handle(m.Topic, m.Payload)
	if f.rejected(protocol.RejectStale) != 1 {
		t.Errorf("stale count %v", f.rejected(protocol.RejectStale))
	}
	// A delta for this box only applies too.
	d2, _ := f.signer.Delta("box-1", &permit.Batch{Seq: 2, Changes: permits(10, 12)})
	f.s.Handle(d2.Topic, d2.Payload)
	if f.seq(t) != 2 || f.permitCount(t) != 12 {
		t.Fatalf("after delta 2: seq %d, %d permits", f.seq(t), f.permitCount(t))
	}
	// A gap: refused, resync requested with the applied seq.
	d4 := f.delta(t, 4, permits(20, 21))
	f.s.Handle(d4.Topic, d4.Payload)
	if f.seq(t) != 2 || f.rejected(protocol.RejectGap) != 1 {
		t.Fatalf("gap: seq %d, gap count %v", f.seq(t), f.rejected(protocol.RejectGap))
	}
	rs := f.out.requests()
	if len(rs) != 1 || rs[0].Reason != protocol.RequestGap || rs[0].Seq != 2 {
		t.Fatalf("requests %+v", rs)
	}
	// Another gap right after does not ask again ...
	d5 := f.delta(t, 5, permits(21, 22))
	f.s.Handle(d5.Topic, d5.Payload)
	if len(f.out.requests()) != 1 {
		t.Errorf("asked again at once: %+v", f.out.requests())
	}
	// ... but Tick does when the request stays unanswered.
	f.now = f.now.Add(31 * time.Second)
	f.s.Tick()
	if rs := f.out.requests(); len(rs) != 2 || rs[1].Reason != protocol.RequestGap {
		t.Errorf("repeated request %+v", rs)
	}
	// The answer (deltas 3..5) clears the wait.
	for seq := uint64(3); seq <= 5; seq++ {
		d := f.delta(t, seq, permits(30+int(seq), 31+int(seq)))
		f.s.Handle(d.Topic, d.Payload)
	}
	if st := f.s.State(); st.Seq != 5 || st.Waiting != "" {
		t.Errorf("after the answer: %+v", st)
	}
	f.now = f.now.Add(time.Hour)
	f.s.Tick()
	if len(f.out.requests()) != 2 {
		t.Error("asked again though nothing is awaited")
	}
}

// TestRefused: every message that is not a correctly signed, valid,
// fitting one is refused with a metric and a log line, and nothing else
// changes: no permit, no sequence number, no request.
func TestRefused(t *testing.T) {
	f := newFixture(t)
	good := f.delta(t, 1, append(base(), permits(0, 5)...))
	f.s.Handle(good.Topic, good.Payload)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner := &central.Signer{Key: other, Prefix: "anpr/v1", Site: "p1"}
	wrongKey, _ := otherSigner.Delta("", &permit.Batch{Seq: 2, Changes: permits(5, 6)})
	tampered := f.delta(t, 2, permits(5, 6))
	tampered.Payload = bytes.Replace(tampered.Payload, []byte(`"seq":2`), []byte(`"seq":3`), 1)
	otherSite := &central.Signer{Key: f.signer.Key, Prefix: "anpr/v1", Site: "p2"}
	moved, _ := otherSite.Delta("", &permit.Batch{Seq: 2, Changes: permits(5, 6)})
	unsigned, _ := json.Marshal(permit.Batch{Seq: 2, Changes: permits(5, 6)})
	badSig := f.delta(t, 2, permits(5, 6))
	badSig.Payload = bytes.Replace(badSig.Payload, []byte(`"sig":"`), []byte(`"sig":"AAAA`), 1)
	invalid := f.delta(t, 2, []permit.Change{{Op: permit.Put, Permit: &permit.Permit{ID: "x", Tenant: "t", Product: "nope",
		Status: permit.Active, ValidFrom: permit.Date(2026, 1, 1), Plates: []string{"AB12345"}}}})
	huge := make([]byte, 10<<20)
	copy(huge, `{"v":1,"alg":"ed25519","key":"k","sig":"AAAA","body":{"seq":2,"changes":[`)
	tests := []struct {
		name    string
		topic   string
		payload []byte
		reason  protocol.RejectReason
	}{
		{"signed by another key", wrongKey.Topic, wrongKey.Payload, protocol.RejectUnknownKey},
		{"body changed after signing", tampered.Topic, tampered.Payload, protocol.RejectBadSignature},
		{"signed for another site", topics.SiteDelta(), moved.Payload, protocol.RejectBadSignature},
		{"unsigned", topics.SiteDelta(), unsigned, protocol.RejectUnsigned},
		{"signature mangled", badSig.Topic, badSig.Payload, protocol.RejectBadSignature},
		{"malformed JSON", topics.SiteDelta(), []byte(`{"v":1,"sig":`), protocol.RejectMalformed},
		{"not JSON", topics.Snapshot(), []byte{0xff, 0xd8, 0xff}, protocol.RejectMalformed},
		{"10 MB", topics.SiteDelta(), huge, protocol.RejectTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, sentBefore := f.rejected(tt.reason), f.out.count()
			f.log.Reset()
			f.s.Handle(tt.topic, tt.payload)
			if got := f.rejected(tt.reason); got != before+1 {
				t.Errorf("rejected{reason=%s} went %v -> %v", tt.reason, before, got)
			}
			if !strings.Contains(f.log.String(), "permit sync message refused") || !strings.Contains(f.log.String(), string(tt.reason)) {
				t.Errorf("log: %s", f.log)
			}
			if f.seq(t) != 1 || f.permitCount(t) != 5 || f.out.count() != sentBefore {
				t.Errorf("something changed: seq %d, %d permits, %d messages sent", f.seq(t), f.permitCount(t), f.out.count()-sentBefore)
			}
		})
	}
	// Signed and in sequence, but the store will not take it: refused,
	// and a resync is asked for since nothing after it can apply.
	f.s.Handle(invalid.Topic, invalid.Payload)
	if f.rejected(protocol.RejectInvalid) != 1 || f.seq(t) != 1 || len(f.out.requests()) != 1 {
		t.Errorf("invalid delta: count %v, seq %d, requests %v", f.rejected(protocol.RejectInvalid), f.seq(t), f.out.requests())
	}
	// Without a key, everything is refused.
	nokey := New(f.store, f.out, Options{Topics: topics, Log: zerolog.Nop(), Metrics: f.m})
	g2 := f.delta(t, 2, permits(5, 6))
	nokey.Handle(g2.Topic, g2.Payload)
	if f.rejected(protocol.RejectNoKey) != 1 || f.seq(t) != 1 {
		t.Errorf("no key: count %v, seq %d", f.rejected(protocol.RejectNoKey), f.seq(t))
	}
}

func (f *fixture) snapshot(t *testing.T, id string, seq uint64, cs []permit.Change, chunk int) []central.Message {
	t.Helper()
	ms, err := f.signer.Snapshot("box-1", id, seq, cs, chunk)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestSnapshot(t *testing.T) {
	f := newFixture(t)
	d := f.delta(t, 1, append(base(), permits(0, 3)...))
	f.s.Handle(d.Topic, d.Payload)

	// A good snapshot at seq 10, with deltas arriving during the load.
	ms := f.snapshot(t, "s1", 10, append(base(), permits(100, 350)...), 50)
	if len(ms) != 8 { // 111 base records and 250 permits
		t.Fatalf("%d chunks", len(ms))
	}
	for i, m := range ms {
		f.s.Handle(m.Topic, m.Payload)
		if i == 1 {
			// Chunk 0 delivered again: ignored, the load goes on.
			f.s.Handle(ms[0].Topic, ms[0].Payload)
		}
		if i == 2 {
			if st := f.s.State(); st.Loading == nil || st.Loading.Received != 3 || st.Seq != 1 {
				t.Errorf("state while loading %+v", st)
			}
			for _, seq := range []uint64{9, 11} { // 9 is older than the snapshot; 11 follows it
				dd := f.delta(t, seq, permits(400+int(seq), 401+int(seq)))
				f.s.Handle(dd.Topic, dd.Payload)
			}
			if f.permitCount(t) != 3 {
				t.Error("the live set changed during the load")
			}
		}
	}
	if f.seq(t) != 11 || f.permitCount(t) != 251 {
		t.Fatalf("after the snapshot: seq %d, %d permits; %s", f.seq(t), f.permitCount(t), f.log)
	}

	// Bad ones: each refused, the live set untouched, a resync asked for.
	fake := f.snapshot(t, "s2", 12, append(base(), permits(0, 100)...), 40)
	for i := range fake { // the same chunks, but signed with a digest that is wrong
		var cc protocol.SnapshotChunk
		b, _ := protocol.Verify(f.s.o.Key, fake[i].Topic, fake[i].Payload)
		json.Unmarshal(b, &cc)
		cc.Digest = "sha256:" + strings.Repeat("0", 64)
		nb, _ := json.Marshal(cc)
		fake[i].Payload, _ = protocol.Sign(f.signer.Key, fake[i].Topic, nb)
	}
	missing := f.snapshot(t, "s3", 12, append(base(), permits(0, 100)...), 40)
	missing = append(missing[:1], missing[2:]...)
	old := f.snapshot(t, "s4", 5, append(base(), permits(0, 100)...), 40)
	for _, tt := range []struct {
		name   string
		ms     []central.Message
		reason protocol.RejectReason
	}{
		{"wrong digest", fake, protocol.RejectDigest},
		{"a chunk missing", missing, protocol.RejectGap},
		{"older than the data", old, protocol.RejectStale},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, reqs := f.rejected(tt.reason), len(f.out.requests())
			for _, m := range tt.ms {
				f.s.Handle(m.Topic, m.Payload)
			}
			if f.rejected(tt.reason) < before+1 {
				t.Errorf("not refused as %s; log %s", tt.reason, f.log)
			}
			if f.seq(t) != 11 || f.permitCount(t) != 251 {
				t.Errorf("live set changed: seq %d, %d permits", f.seq(t), f.permitCount(t))
			}
			if st := f.s.State(); st.Loading != nil {
				t.Errorf("still loading: %+v", st)
			}
			if tt.reason != protocol.RejectStale && len(f.out.requests()) != reqs+1 {
				t.Errorf("no resync asked for")
			}
		})
	}

	// A snapshot that stalls is given up.
	stall := f.snapshot(t, "s5", 20, append(base(), permits(0, 100)...), 40)
	f.s.Handle(stall[0].Topic, stall[0].Payload)
	f.now = f.now.Add(2 * time.Minute)
	f.s.Tick()
	if st := f.s.State(); st.Loading != nil || st.Waiting != protocol.RequestSnapshot {
		t.Errorf("after a stall: %+v", st)
	}
	// A chunk of it arriving later is stale, and the data is untouched.
	f.s.Handle(stall[1].Topic, stall[1].Payload)
	if f.seq(t) != 11 {
		t.Errorf("seq %d", f.seq(t))
	}
}

func TestConnectedAndResync(t *testing.T) {
	f := newFixture(t)
	f.s.Connected()
	f.s.Resync("operator asked")
	rs := f.out.requests()
	if len(rs) != 2 || rs[0].Reason != protocol.RequestConnect || rs[1].Reason != protocol.RequestCommand || rs[1].Detail != "operator asked" {
		t.Fatalf("requests %+v", rs)
	}
	// Neither waits for an answer (there may be nothing to send).
	if st := f.s.State(); st.Waiting != "" {
		t.Errorf("waiting %q", st.Waiting)
	}
	// Not connected: nothing breaks; the next connect asks again.
	f.out.down = true
	f.s.Connected()
}

// FuzzHandle: whatever arrives on the sync topics, nothing panics and,
// unless correctly signed, nothing changes.
func FuzzHandle(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer := &central.Signer{Key: priv, Prefix: "anpr/v1", Site: "p1"}
	d, _ := signer.Delta("", &permit.Batch{Seq: 1, Changes: base()})
	f.Add(d.Payload, uint8(0))
	snaps, _ := signer.Snapshot("box-1", "s", 3, base()[:3], 2)
	for _, s := range snaps {
		f.Add(s.Payload, uint8(2))
	}
	f.Add([]byte(`{"v":1,"alg":"ed25519","key":"`+protocol.KeyID(pub)+`","sig":"","body":{}}`), uint8(1))
	f.Add([]byte(`{"seq":1,"changes":[]}`), uint8(0))
	store, db := permittest.Store(f)
	db.NoSync = true // a fuzzer runs this thousands of times a second; durability is not under test
	s := New(store, &sent{}, Options{Topics: topics, Key: pub, Log: zerolog.Nop()})
	tops := s.Filters()
	f.Fuzz(func(t *testing.T, payload []byte, which uint8) {
		s.Handle(tops[int(which)%len(tops)], payload)
		var n int
		store.View(func(v *permit.View) error { n = v.Counts().Permits; return nil })
		if n != 0 {
			t.Fatalf("a fuzzed message added %d permits", n)
		}
	})
}
