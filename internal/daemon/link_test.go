package daemon

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"anprd/internal/config"
	"anprd/internal/decide"
	"anprd/internal/health"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/sync/central"
	"anprd/sync/command/commandtest"
	"anprd/sync/mqtt"
	"anprd/sync/mqtt/mqtttest"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
)

// burstPassage is passage i of a burst, with a fixed id so that a
// restarted box hands the same passage over again.
func burstPassage(i int) passage.Passage {
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	var id passage.ID
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(at.UnixMilli()))
	copy(id[:6], b[2:])
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	d, _ := passage.FromDecision(decide.Decision{Class: decide.Permit, Reason: decide.PermitValid, Action: decide.Open, Plate: "EL43210"})
	return passage.Passage{ID: id, Site: "oslo-p1", Device: "box-1", Lane: "in-1", Direction: "entry", Kind: passage.Vehicle, Time: at,
		Read: &passage.Read{Plate: "EL43210", Conf: 0.9}, Decision: d, Gate: passage.Gate{Action: passage.Opened, Passed: true}}
}

func brokerConfig(t testing.TB, b *mqtttest.Broker, dir string, pub ed25519.PublicKey) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	if dir != "" {
		cfg.State.Dir = dir
	}
	cfg.Site.Device = "box-1"
	cfg.MQTT.Broker = b.URL
	cfg.MQTT.ClientID = "anprd-oslo-p1-box-1"
	cfg.MQTT.OutboxMaxPassages = 100000
	cfg.MQTT.Heartbeat = config.Duration(200 * time.Millisecond)
	if pub != nil {
		kf := filepath.Join(t.TempDir(), "central.pub")
		os.WriteFile(kf, protocol.MarshalPublicKey(pub), 0o600)
		cfg.MQTT.CentralKeyFile = kf
	}
	return cfg
}

// centralSide is a subscriber playing the central system.
type centralSide struct {
	c       *mqtt.Client
	counter *central.Counter
	mu      sync.Mutex
	by      map[string][][]byte // topic -> payloads
	sig     chan struct{}
}

func newCentral(t *testing.T, b *mqtttest.Broker) *centralSide {
	t.Helper()
	cs := &centralSide{counter: central.NewCounter(), by: map[string][][]byte{}, sig: make(chan struct{}, 1)}
	cs.c, _ = mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "central", Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond})
	cs.c.Subscribe("all", 1, 256<<20, func(r mqtt.Received) {
		if strings.HasSuffix(r.Topic, "/passage") {
			cs.counter.Add(r.Payload)
		}
		cs.mu.Lock()
		cs.by[r.Topic] = append(cs.by[r.Topic], r.Payload)
		cs.mu.Unlock()
		select {
		case cs.sig <- struct{}{}:
		default:
		}
	}, "anpr/v1/oslo-p1/box-1/#")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cs.c.Run(ctx, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for !cs.c.Connected() {
		time.Sleep(5 * time.Millisecond)
	}
	return cs
}

// wait returns the payloads on topic once ok says so.
func (cs *centralSide) wait(t *testing.T, topic string, ok func([][]byte) bool) [][]byte {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		cs.mu.Lock()
		got := append([][]byte(nil), cs.by[topic]...)
		cs.mu.Unlock()
		if ok(got) {
			return got
		}
		select {
		case <-cs.sig:
		case <-deadline:
			t.Fatalf("nothing fitting on %s within 10 s; got %d messages", topic, len(got))
		}
	}
}

func lastStatus(ps [][]byte) protocol.Status {
	var s protocol.Status
	if len(ps) > 0 {
		json.Unmarshal(ps[len(ps)-1], &s)
	}
	return s
}

// TestDaemonTalksToCentral runs the daemon against a real broker:
// passages handed to its outbox arrive, it says it is online and beats,
// a signed delta updates its permits, a signed command is carried out and
// answered, and a clean stop leaves it offline.
func TestDaemonTalksToCentral(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cfg := brokerConfig(t, b, "", pub)
	cfg.Lanes = []config.Lane{{ID: "in-1", Direction: "entry"}}
	cs := newCentral(t, b)
	opener := &commandtest.Opener{}
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: noReader, Tick: 20 * time.Millisecond, Opener: opener})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	tp := protocol.Topics{Prefix: "anpr/v1", Site: "oslo-p1", Device: "box-1"}

	cs.wait(t, tp.Status(), func(ps [][]byte) bool { return lastStatus(ps).State == protocol.Online })
	cs.wait(t, tp.Heartbeat(), func(ps [][]byte) bool { return len(ps) >= 2 })
	// The box asked for the permit data after its seq at connect.
	cs.wait(t, tp.SyncRequest(), func(ps [][]byte) bool { return len(ps) >= 1 })

	// Lanes hand passages over (issue 6); here the test does.
	for i := range 200 {
		if err := d.Outbox().Record(burstPassage(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := cs.counter.WaitUnique(200, 10*time.Second); n != 200 {
		t.Fatalf("%d passages arrived, want 200", n)
	}

	// A signed delta applies.
	signer := &central.Signer{Key: priv, Prefix: "anpr/v1", Site: "oslo-p1"}
	dm, _ := signer.Delta("", &permit.Batch{Seq: 1, Changes: []permit.Change{{Op: permit.Put, Facility: &permit.Facility{ID: "oslo-p1"}}}})
	if err := cs.c.Send(dm.Topic, 1, false, dm.Payload); err != nil {
		t.Fatal(err)
	}
	cs.wait(t, tp.SyncState(), func(ps [][]byte) bool {
		var st protocol.SyncState
		return len(ps) > 0 && json.Unmarshal(ps[len(ps)-1], &st) == nil && st.Seq == 1
	})

	// A remote opening: the lane's opener is asked, the audit passage
	// goes up, the reply names it.
	cm, _ := signer.Command("box-1", protocol.Command{ID: "cmd-1", Type: protocol.CommandOpen, Issued: time.Now(), Lane: "in-1",
		Operator: "kari", Reason: "paid at the desk"})
	cs.c.Send(cm.Topic, 1, false, cm.Payload)
	rs := cs.wait(t, tp.Reply(), func(ps [][]byte) bool { return len(ps) >= 1 })
	var rep protocol.Reply
	json.Unmarshal(rs[0], &rep)
	if rep.Status != protocol.ReplyDone || rep.Passage == "" || len(opener.Opened()) != 1 {
		t.Fatalf("reply %+v, opened %v", rep, opener.Opened())
	}
	audit, _ := passage.ParseID(rep.Passage)
	deadline := time.Now().Add(5 * time.Second)
	for !cs.counter.Has(audit) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !cs.counter.Has(audit) {
		t.Error("the audit passage of the remote opening did not arrive")
	}

	// The status page shows the uplink and the permit sync.
	time.Sleep(50 * time.Millisecond)
	for _, s := range d.health.Snapshot() {
		switch s.Name {
		case "uplink":
			if s.State != health.OK || !strings.Contains(s.Detail, "connected since") {
				t.Errorf("uplink %+v", s)
			}
		case "permit-sync":
			if s.State != health.OK || s.Detail != "seq 1" {
				t.Errorf("permit-sync %+v", s)
			}
		}
	}
	body := mustGather(t, d.Registry())
	names := map[string]bool{}
	for _, mf := range body {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"anprd_outbox_passages", "anprd_outbox_oldest_age_seconds", "anprd_uplink_delivered_total",
		"anprd_mqtt_connected", "anprd_sync_applied_total", "anprd_commands_carried_out_total", "anprd_telemetry_heartbeats_total"} {
		if !names[want] {
			t.Errorf("metric %s missing", want)
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil
	cs.wait(t, tp.Status(), func(ps [][]byte) bool {
		s := lastStatus(ps)
		return s.State == protocol.Offline && s.Reason == protocol.ReasonShutdown
	})
}

// TestDaemonRunsWithoutBroker: no broker at all; the daemon starts, is
// ready, keeps what lanes hand over, and says why the uplink is degraded.
func TestDaemonRunsWithoutBroker(t *testing.T) {
	cfg := testConfig(t)
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for i := range 50 {
		if err := d.Outbox().Record(burstPassage(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ready, _ := d.health.Ready()
		var up health.Status
		for _, s := range d.health.Snapshot() {
			if s.Name == "uplink" {
				up = s
			}
		}
		if ready && up.State == health.Degraded && strings.Contains(up.Detail, "broker not connected") && strings.Contains(up.Detail, "outbox 50 passages") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ready %v, uplink %+v", ready, up)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDaemonKilledMidBurst is the case: the box is killed with
// SIGKILL twice in the middle of a burst of 10,000 passages and started
// again each time; the central system receives 10,000 unique ids.
func TestDaemonKilledMidBurst(t *testing.T) {
	const total = 10000
	if dir := os.Getenv("ANPRD_TEST_DAEMON_DIR"); dir != "" {
		daemonChild(t, dir, total)
		return
	}
	b := mqtttest.Start(t, mqtttest.Options{})
	cs := newCentral(t, b)
	dir := t.TempDir()
	next := 0
	var kills []string
	for round := 0; ; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDaemonKilledMidBurst$", "-test.v=false")
		cmd.Env = append(os.Environ(), "ANPRD_TEST_DAEMON_DIR="+dir, "ANPRD_TEST_BROKER="+b.URL, "ANPRD_TEST_START="+strconv.Itoa(next))
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		lines := make(chan string, 1<<16)
		go func() {
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		killAt := []int{3000, 7000}
		finished, killed := false, false
		for l := range lines {
			if n, ok := strings.CutPrefix(l, "recorded "); ok {
				i, _ := strconv.Atoi(n)
				if i != next {
					t.Fatalf("child recorded %d, expected %d", i, next)
				}
				next++
				if round < len(killAt) && next >= killAt[round] && !killed {
					killed = true
					cmd.Process.Kill()
					u, _, _ := cs.counter.Counts()
					kills = append(kills, fmt.Sprintf("killed after %d recorded, %d arrived", next, u))
				}
			} else if l == "all recorded" {
				finished = true
				break
			} else if strings.HasPrefix(l, "error") {
				t.Fatalf("child: %s", l)
			}
		}
		if finished {
			// The last run uploads the rest, then is stopped.
			n := cs.counter.WaitUnique(total, 30*time.Second)
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
			u, dups, bad := cs.counter.Counts()
			t.Logf("%s; %d unique ids, %d duplicates, %d undecodable", strings.Join(kills, "; "), u, dups, bad)
			if n != total {
				t.Errorf("%d unique ids arrived, want %d", n, total)
			}
			return
		}
		cmd.Wait()
		if round > 5 {
			t.Fatal("the child never finished")
		}
	}
}

// daemonChild runs the daemon on dir and hands over passages from
// ANPRD_TEST_START on, printing each once Record returned.
func daemonChild(t *testing.T, dir string, total int) {
	b := &mqtttest.Broker{URL: os.Getenv("ANPRD_TEST_BROKER")}
	cfg := brokerConfig(t, b, dir, nil)
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	start, _ := strconv.Atoi(os.Getenv("ANPRD_TEST_START"))
	w := bufio.NewWriter(os.Stdout)
	// Twenty at a time: a burst of 10,000 at one fsync each would take
	// most of the test's time.
	for lo := start; lo < total; lo += 20 {
		var ps []passage.Passage
		for i := lo; i < min(lo+20, total); i++ {
			ps = append(ps, burstPassage(i))
		}
		if err := d.Outbox().RecordAll(ps); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		for i := lo; i < min(lo+20, total); i++ {
			fmt.Fprintln(w, "recorded", i)
		}
		w.Flush()
	}
	fmt.Fprintln(w, "all recorded")
	w.Flush()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	cancel()
	<-done
	os.Exit(0)
}

// lockedBuffer is a log written by the daemon's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestDaemonRefusesThroughBroker is the list, sent to a running
// daemon through a real broker: a delta with a gap, a wrongly signed
// delta, malformed JSON, a 10 MB message and a command replayed after its
// age limit are each refused with a metric and a log line, and nothing
// else changes.
func TestDaemonRefusesThroughBroker(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, wrong, _ := ed25519.GenerateKey(rand.Reader)
	cfg := brokerConfig(t, b, "", pub)
	cfg.Lanes = []config.Lane{{ID: "in-1", Direction: "entry"}}
	cs := newCentral(t, b)
	logs := &lockedBuffer{}
	opener := &commandtest.Opener{}
	d, err := New(Options{Config: cfg, Log: zerolog.New(logs), Notifier: &fakeNotifier{}, Tick: 20 * time.Millisecond, Opener: opener,
		ReaderCheck: noReader})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	tp := protocol.Topics{Prefix: "anpr/v1", Site: "oslo-p1", Device: "box-1"}
	cs.wait(t, tp.Status(), func(ps [][]byte) bool { return lastStatus(ps).State == protocol.Online })

	signer := &central.Signer{Key: priv, Prefix: "anpr/v1", Site: "oslo-p1"}
	first, _ := signer.Delta("", &permit.Batch{Seq: 1, Changes: []permit.Change{{Op: permit.Put, Facility: &permit.Facility{ID: "oslo-p1"}}}})
	cs.c.Send(first.Topic, 1, false, first.Payload)
	cs.wait(t, tp.SyncState(), func(ps [][]byte) bool {
		var st protocol.SyncState
		return len(ps) > 0 && json.Unmarshal(ps[len(ps)-1], &st) == nil && st.Seq == 1
	})

	metric := func(name, label string) float64 {
		for _, mf := range mustGather(t, d.Registry()) {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.Metric {
				if len(m.Label) > 0 && m.Label[0].GetValue() == label {
					return m.Counter.GetValue()
				}
			}
		}
		return 0
	}
	gap, _ := signer.Delta("", &permit.Batch{Seq: 3, Changes: []permit.Change{{Op: permit.Put, Facility: &permit.Facility{ID: "gap"}}}})
	wrongSigner := &central.Signer{Key: wrong, Prefix: "anpr/v1", Site: "oslo-p1"}
	wrongKey, _ := wrongSigner.Delta("", &permit.Batch{Seq: 2, Changes: []permit.Change{{Op: permit.Put, Facility: &permit.Facility{ID: "evil"}}}})
	old, _ := signer.Command("box-1", protocol.Command{ID: "old-1", Type: protocol.CommandOpen, Issued: time.Now().Add(-2 * time.Minute),
		Lane: "in-1", Operator: "o", Reason: "replayed"})
	huge := make([]byte, 10<<20)
	for i := range huge {
		huge[i] = ' '
	}
	copy(huge, `{"v":1,"alg":"ed25519","key":"x","sig":"AAAA","body":{`)
	for _, tt := range []struct {
		name, topic string
		payload     []byte
		metric      string
		reason      string
		log         string
	}{
		{"a delta with a gap", gap.Topic, gap.Payload, "anprd_sync_rejected_total", "gap", "permit sync message refused"},
		{"a wrongly signed delta", wrongKey.Topic, wrongKey.Payload, "anprd_sync_rejected_total", "unknown_key", "permit sync message refused"},
		{"malformed JSON", tp.SiteDelta(), []byte(`{"v":1,"body":{"seq":2`), "anprd_sync_rejected_total", "malformed", "permit sync message refused"},
		{"a 10 MB message", tp.Snapshot(), huge, "anprd_sync_rejected_total", "too_large", "permit sync message refused"},
		{"a command replayed after its age limit", old.Topic, old.Payload, "anprd_commands_rejected_total", "expired", "command refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := metric(tt.metric, tt.reason)
			if err := cs.c.Send(tt.topic, 1, false, tt.payload); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for metric(tt.metric, tt.reason) < before+1 {
				if time.Now().After(deadline) {
					t.Fatalf("%s{reason=%s} stayed at %v", tt.metric, tt.reason, before)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(logs.String(), tt.log) || !strings.Contains(logs.String(), `"reason":"`+tt.reason+`"`) {
				t.Errorf("no log line %q with reason %s", tt.log, tt.reason)
			}
		})
	}
	// Nothing else changed: the permit data is at seq 1 with one facility,
	// no barrier opened, the expired command got a refusal and no other
	// reply went out.
	seq, _ := d.permits.Seq()
	var facilities int
	d.permits.View(func(v *permit.View) error { facilities = v.Counts().Facilities; return nil })
	if seq != 1 || facilities != 1 || len(opener.Opened()) != 0 {
		t.Errorf("seq %d, %d facilities, opened %v", seq, facilities, opener.Opened())
	}
	rs := cs.wait(t, tp.Reply(), func(ps [][]byte) bool { return len(ps) >= 1 })
	var rep protocol.Reply
	json.Unmarshal(rs[0], &rep)
	if len(rs) != 1 || rep.Status != protocol.ReplyRefused || rep.Reason != "expired" {
		t.Errorf("replies %d: %+v", len(rs), rep)
	}
}

// TestLogConversion: start-up says in one line whether older permit data
// was converted or dropped for a resync, and nothing when it was current.
func TestLogConversion(t *testing.T) {
	for _, tt := range []struct {
		c    permit.Conversion
		want []string
	}{
		{permit.Conversion{}, nil},
		{permit.Conversion{From: 1, Records: 42}, []string{`"level":"info"`, `"from_format":1`, `"records":42`, "converted"}},
		{permit.Conversion{From: 1, Dropped: "product gone"}, []string{`"level":"warn"`, `"why":"product gone"`, "resync"}},
	} {
		var buf strings.Builder
		logConversion(zerolog.New(&buf), tt.c)
		lines := strings.Count(buf.String(), "\n")
		if tt.want == nil && lines != 0 || tt.want != nil && lines != 1 {
			t.Errorf("%+v: %d lines: %s", tt.c, lines, buf.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%+v: %q not in %s", tt.c, w, buf.String())
			}
		}
	}
}
