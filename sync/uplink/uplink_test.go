package uplink_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/presence"
	"anprd/internal/state"
	"anprd/sync/central"
	"anprd/sync/mqtt"
	"anprd/sync/mqtt/mqtttest"
	"anprd/sync/outbox"
	"anprd/sync/protocol"
	"anprd/sync/uplink"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

var base = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

var topics = protocol.Topics{Prefix: "anpr/v1", Site: "p1", Device: "box-1"}

// testPassage is passage i with a fixed id.
func testPassage(i int) passage.Passage {
	at := base.Add(time.Duration(i) * time.Millisecond)
	var id passage.ID
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(at.UnixMilli()))
	copy(id[:6], b[2:])
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	d, _ := passage.FromDecision(decide.Decision{Class: decide.Permit, Reason: decide.PermitValid, Action: decide.Open, Plate: "EL43210"})
	return passage.Passage{ID: id, Site: "p1", Device: "box-1", Lane: "in-1", Direction: "entry", Kind: passage.Vehicle, Time: at,
		Read: &passage.Read{Plate: "EL43210", Conf: 0.9}, Decision: d, Gate: passage.Gate{Action: passage.Opened, Passed: true}}
}

func newOutbox(t *testing.T, evidence bool) *outbox.Outbox {
	t.Helper()
	db, err := state.Open(t.TempDir(), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ob, err := outbox.Open(db.DB, outbox.Options{Max: 100000, Evidence: evidence})
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

func runPart(t *testing.T, run func(context.Context) error) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

// fakePub is a broker connection whose deliveries the test completes.
type fakePub struct {
	mu        sync.Mutex
	connected bool
	sent      []sent
	sig       chan struct{}
}

type sent struct {
	topic   string
	payload []byte
	done    chan struct{}
	err     error
}

func (f *fakePub) Track(topic string, qos byte, retain bool, payload []byte) (<-chan struct{}, func() error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &sent{topic: topic, payload: payload, done: make(chan struct{})}
	f.sent = append(f.sent, *s)
	i := len(f.sent) - 1
	select {
	case f.sig <- struct{}{}:
	default:
	}
	return s.done, func() error { f.mu.Lock(); defer f.mu.Unlock(); return f.sent[i].err }
}

func (f *fakePub) Connected() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.connected }

// complete finishes delivery i with err.
func (f *fakePub) complete(i int, err error) {
	f.mu.Lock()
	f.sent[i].err = err
	close(f.sent[i].done)
	f.mu.Unlock()
}

func (f *fakePub) waitSent(t *testing.T, n int) []sent {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		f.mu.Lock()
		if len(f.sent) >= n {
			out := append([]sent(nil), f.sent...)
			f.mu.Unlock()
			return out
		}
		f.mu.Unlock()
		select {
		case <-f.sig:
		case <-deadline:
			t.Fatalf("only %d published, want %d", len(f.sent), n)
		}
	}
}

func waitEmpty(t *testing.T, ob *outbox.Outbox, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := ob.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Entries == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d entries (%d passages) after %v", st.Entries, st.Passages, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAckOnlyInOrder: an entry leaves the outbox only when it and every
// entry before it were acknowledged; a failed delivery sends everything
// not acknowledged again, from the head, in order.
func TestAckOnlyInOrder(t *testing.T) {
	ob := newOutbox(t, false)
	for i := range 5 {
		ob.Record(testPassage(i))
	}
	pub := &fakePub{connected: true, sig: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	m := uplink.NewMetrics(reg)
	u := uplink.New(ob, pub, uplink.Options{Topics: topics, Window: 3, Flush: 5 * time.Millisecond, Log: zerolog.Nop(), Metrics: m})
	runPart(t, u.Run)
	s := pub.waitSent(t, 3)
	if len(s) != 3 {
		t.Fatalf("%d in flight with a window of 3", len(s))
	}
	// The second and third complete first: nothing may leave yet.
	pub.complete(1, nil)
	pub.complete(2, nil)
	time.Sleep(50 * time.Millisecond)
	if st, _ := ob.Stats(); st.Passages != 5 {
		t.Fatalf("%d passages left after out-of-order acks, want 5", st.Passages)
	}
	pub.complete(0, nil)
	s = pub.waitSent(t, 5)
	deadline := time.Now().Add(2 * time.Second)
	for st, _ := ob.Stats(); st.Passages != 2; st, _ = ob.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("%d passages left, want 2", st.Passages)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Passage 3's delivery fails (the connection dropped) though 4's
	// succeeds: both are sent again, 3 first.
	pub.complete(4, nil)
	pub.complete(3, mqtt.ErrConnectionLost)
	// The failure is seen before the new connection is: a connection
	// that comes first starts the pass again and the old results are
	// dropped uncounted, which is right but not what this test counts.
	for deadline := time.Now().Add(2 * time.Second); metric(t, reg, "anprd_uplink_deliveries_failed_total", "") != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the failed delivery of passage 3 was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	u.Connected()
	s = pub.waitSent(t, 7)
	for i, want := range []int{3, 4} {
		p, err := protocol.DecodePassage(s[5+i].payload)
		if err != nil || p.ID != testPassage(want).ID {
			t.Errorf("resend %d is %v (%v), want passage %d", i, p, err, want)
		}
	}
	pub.complete(5, nil)
	pub.complete(6, nil)
	waitEmpty(t, ob, 2*time.Second)
	if f := metric(t, reg, "anprd_uplink_deliveries_failed_total", ""); f != 1 {
		t.Errorf("failed deliveries %v, want 1", f)
	}
}

type dirImages string

func (d dirImages) ReadImage(p string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), p))
}

// TestEvidence: images go after their passage on their own topic; those
// past retention or gone from disk are skipped and counted.
func TestEvidence(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d"), 0o755)
	jpeg := []byte{0xff, 0xd8, 0xff, 0xe0, 'J', 'F', 'I', 'F', 0xff, 0xd9}
	os.WriteFile(filepath.Join(dir, "d/1-plate.jpg"), jpeg, 0o644)
	os.WriteFile(filepath.Join(dir, "d/1-scene.jpg"), jpeg, 0o644)
	ob := newOutbox(t, true)
	p := testPassage(1)
	p.Evidence = passage.Evidence{Plate: "d/1-plate.jpg", Scene: "d/1-scene.jpg"}
	p.Presence = &passage.Presence{Facility: "p1", Enter: &presence.Vehicle{Facility: "p1", Plate: "EL43210", Entered: p.Time}}
	gone := testPassage(2)
	gone.Evidence.Scene = "d/gone.jpg"
	ob.Record(p)
	ob.Record(gone)
	pub := &fakePub{connected: true, sig: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	m := uplink.NewMetrics(reg)
	now := base.Add(time.Hour)
	held := testPassage(4)
	held.Evidence.Scene = "d/1-scene.jpg"
	u := uplink.New(ob, pub, uplink.Options{Topics: topics, Images: dirImages(dir), EvidenceMaxAge: 7 * 24 * time.Hour,
		Keep: func(id passage.ID) bool { return id == held.ID },
		Now:  func() time.Time { return now }, Flush: 5 * time.Millisecond, Log: zerolog.Nop(), Metrics: m})
	runPart(t, u.Run)
	s := pub.waitSent(t, 5)
	want := []string{topics.Passage(), topics.Presence(), topics.Evidence(p.ID, "plate"), topics.Evidence(p.ID, "scene"), topics.Passage()}
	for i, w := range want {
		if s[i].topic != w {
			t.Errorf("message %d on %s, want %s", i, s[i].topic, w)
		}
		pub.complete(i, nil)
	}
	if string(s[2].payload) != string(jpeg) {
		t.Errorf("plate image payload %x", s[2].payload)
	}
	waitEmpty(t, ob, 2*time.Second)
	if n := metric(t, reg, "anprd_uplink_evidence_skipped_total", "missing"); n != 1 {
		t.Errorf("missing images %v, want 1", n)
	}
	// Retention: an image of a passage older than the limit is not sent.
	now = base.Add(8 * 24 * time.Hour)
	expired := testPassage(3)
	expired.Evidence.Scene = "d/1-scene.jpg"
	ob.Record(expired)
	s = pub.waitSent(t, 6)
	pub.complete(5, nil)
	waitEmpty(t, ob, 2*time.Second)
	if n := metric(t, reg, "anprd_uplink_evidence_skipped_total", "expired"); len(s) != 6 || n != 1 {
		t.Errorf("expired image: sent %d, skipped %v", len(s), n)
	}
	// Except the images of a passage kept for follow-up: they go whatever
	// their age, while they are on disk.
	ob.Record(held)
	s = pub.waitSent(t, 8)
	if s[6].topic != topics.Passage() || s[7].topic != topics.Evidence(held.ID, "scene") {
		t.Errorf("held passage sent as %s, %s", s[6].topic, s[7].topic)
	}
	pub.complete(6, nil)
	pub.complete(7, nil)
	waitEmpty(t, ob, 2*time.Second)
}

// TestBrokerKilledTwice is the case: 10,000 passages while the
// broker is killed and restarted twice. A subscriber with a session,
// deduplicating by id as the central system does, counts 10,000 unique
// ids; the duplicates are reported.
func TestBrokerKilledTwice(t *testing.T) {
	const total = 10000
	b := mqtttest.Start(t, mqtttest.Options{})
	// The box reaches the broker through a proxy that the test holds while
	// the broker restarts, so the subscriber (the central system) is back
	// before the box: what the box sends is then either delivered or not
	// acknowledged, and nothing is lost in a broker with no subscriber.
	proxy := mqtttest.NewProxy(t, b)
	ob := newOutbox(t, false)

	counter := central.NewCounter()
	subOpts := mqtt.Options{Broker: b.URL, ClientID: "central", Log: zerolog.Nop(),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, ConnectTimeout: time.Second}
	sub, _ := mqtt.New(subOpts)
	sub.Subscribe("passages", 1, 64<<20, func(r mqtt.Received) {
		if _, _, err := counter.Add(r.Payload); err != nil {
			t.Errorf("undecodable passage: %v", err)
		}
	}, "anpr/v1/p1/+/passage")
	runPart(t, func(ctx context.Context) error { return sub.Run(ctx, nil) })
	waitUp(t, sub)

	edge, _ := mqtt.New(mqtt.Options{Broker: proxy.URL, ClientID: "edge", Log: zerolog.Nop(),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, ConnectTimeout: time.Second})
	reg := prometheus.NewRegistry()
	m := uplink.NewMetrics(reg)
	u := uplink.New(ob, edge, uplink.Options{Topics: topics, Log: zerolog.Nop(), Metrics: m})
	edge.OnConnect(u.Connected)
	runPart(t, func(ctx context.Context) error { return edge.Run(ctx, nil) })
	runPart(t, u.Run)

	// Lanes record while the uplink sends; the broker dies twice.
	// The second half is recorded only once the broker is back from the
	// first kill, so that the box is still sending when the second comes
	// (on a fast machine the box otherwise catches up before it).
	recorded, firstDone := make(chan struct{}), make(chan struct{})
	var nrec atomic.Int64
	go func() {
		defer close(recorded)
		for lo := 0; lo < total; lo += 50 {
			if lo == total/2 {
				<-firstDone
			}
			ps := make([]passage.Passage, 0, 50)
			for i := lo; i < lo+50; i++ {
				ps = append(ps, testPassage(i))
			}
			if err := ob.RecordAll(ps); err != nil {
				t.Error(err)
				return
			}
			nrec.Add(50)
			if lo < total/2 {
				time.Sleep(5 * time.Millisecond)
			} else {
				time.Sleep(10 * time.Millisecond) // a longer window for the second kill
			}
		}
	}()
	start := time.Now()
	for k, at := range []int{3000, 6500} {
		if n := counter.WaitUnique(at, 30*time.Second); n < at {
			t.Fatalf("only %d passages arrived before the kill at %d", n, at)
		}
		// Kill mid-stream with messages of the box in flight, at a moment
		// when the subscriber has everything the broker acknowledged.
		// Mosquitto acknowledges a message before it has written it to
		// the subscribers, so a broker killed in between loses messages
		// it acknowledged: that is the broker's durability, not the
		// box's, and a test that let it happen would measure Mosquitto.
		// So the broker is frozen first, and killed only if, frozen, the
		// subscriber has all the box counts as delivered; otherwise it
		// runs on and is frozen again a moment later.
		killAt(t, b, func() (bool, string) {
			delivered := metric(t, reg, "anprd_uplink_delivered_total", "passage")
			inflight := metric(t, reg, "anprd_uplink_in_flight", "")
			u, _, _ := counter.Counts()
			return float64(u) >= delivered && inflight > 0, fmt.Sprintf("%v in flight, %v delivered, %d at the subscriber", inflight, delivered, u)
		})
		connects := sub.Status().Connects
		proxy.Hold()
		time.Sleep(300 * time.Millisecond)
		b.Start()
		for sub.Status().Connects == connects || !sub.Connected() {
			time.Sleep(5 * time.Millisecond)
		}
		proxy.Release()
		if k == 0 {
			close(firstDone)
		}
	}
	<-recorded
	waitEmpty(t, ob, 30*time.Second)
	unique := counter.WaitUnique(total, 10*time.Second)
	u2, dups, bad := counter.Counts()
	t.Logf("%d passages, broker killed twice: %d unique ids at the subscriber, %d duplicates, %d undecodable, %v; uplink restarts %v, failed deliveries %v",
		total, u2, dups, bad, time.Since(start).Round(time.Millisecond), metric(t, reg, "anprd_uplink_restarts_total", ""),
		metric(t, reg, "anprd_uplink_deliveries_failed_total", ""))
	if unique != total {
		missing, sentByEdge := 0, 0
		var first []int
		for i := range total {
			if !counter.Has(testPassage(i).ID) {
				missing++
				if s, _ := ob.Get(testPassage(i).ID); s != nil && s.Sent {
					sentByEdge++
				}
				if len(first) < 5 {
					first = append(first, i)
				}
			}
		}
		t.Errorf("%d unique ids, want %d (%d missing, e.g. %v; %d of them acknowledged to the edge by the broker)", unique, total, missing, first, sentByEdge)
	}
}

// killAt freezes the broker until ready says the moment is right, then
// kills it.
func killAt(t *testing.T, b *mqtttest.Broker, ready func() (bool, string)) {
	t.Helper()
	for try := 0; ; try++ {
		b.Freeze()
		time.Sleep(50 * time.Millisecond) // let what the broker wrote be read
		ok, state := ready()
		if ok {
			b.Kill()
			t.Logf("broker killed (try %d): %s", try+1, state)
			return
		}
		if try == 200 {
			t.Fatalf("no moment to kill the broker in 200 tries: %s", state)
		}
		b.Thaw()
		time.Sleep(time.Duration(1+try%7) * time.Millisecond)
	}
}

func waitUp(t *testing.T, c *mqtt.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !c.Connected() {
		if time.Now().After(deadline) {
			t.Fatalf("no connection: %s", c.LastError())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric is the value of name in reg, of the series whose first label
// value is label ("" for an unlabelled metric); 0 when absent.
func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if label != "" && (len(m.Label) == 0 || m.Label[0].GetValue() != label) {
				continue
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}
