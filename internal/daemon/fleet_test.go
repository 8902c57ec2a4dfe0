package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"anprd/internal/config"
	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/sync/mqtt"
	"anprd/sync/mqtt/mqtttest"
	"anprd/sync/protocol"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// TestDaemonRetentionAckAndHomeAssistant runs the daemon against a real
// broker with a simulated barrier lane and Home Assistant discovery on:
// the discovery configs and the lane's states arrive retained; passages
// recorded are counted by classification; a week on, the delivered
// permit passage loses its images and plate while the charged one keeps
// them; a forged ack changes nothing, the central system's ack lets them
// go at the next round.
func TestDaemonRetentionAckAndHomeAssistant(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(`version: 1
site: {id: oslo-p1, device: box-1, name: Oslo P1}
state: {dir: ` + dir + `}
mqtt:
  broker: "` + b.URL + `"
  home_assistant: {enabled: true}
lanes:
  - id: in-1
    direction: entry
    camera: {source: ` + filepath.Join(dir, "no-camera") + `}
    gate: {simulate: true, open: 1, safety_loop: 2, open_switch: 3, closed_switch: 4}
`))
	if err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(t.TempDir(), "central.pub")
	os.WriteFile(kf, protocol.MarshalPublicKey(pub), 0o600)
	cfg.MQTT.CentralKeyFile = kf
	cfg.Status.Listen = "127.0.0.1:1"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Status.Listen = "127.0.0.1:0"

	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.Add(time.Minute).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }

	// Home Assistant, subscribed before the box starts.
	var haMu sync.Mutex
	ha := map[string][]byte{}
	hc, _ := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "home-assistant", Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond})
	hc.Subscribe("ha", 1, 8<<20, func(r mqtt.Received) {
		haMu.Lock()
		ha[r.Topic] = r.Payload
		haMu.Unlock()
	}, "homeassistant/#", "anpr/v1/oslo-p1/box-1/ha/#")
	hctx, hcancel := context.WithCancel(context.Background())
	hdone := make(chan struct{})
	go func() { hc.Run(hctx, nil); close(hdone) }()
	defer func() { hcancel(); <-hdone }()
	cs := newCentral(t, b)

	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, Now: clock,
		ReaderCheck: func(config.Reader) (string, error) { return "", os.ErrNotExist }, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Two passages with their images: a permit let in, and an
	// unregistered car let in and charged.
	mk := func(i int, class decide.Class, action decide.Action) passage.Passage {
		p := burstPassage(i)
		p.Decision.Class, p.Decision.Action = class, action
		pp, sp, err := d.evidence.Save(p.Time, "in-1", uint64(i), []byte("plate"), []byte("scene"))
		if err != nil {
			t.Fatal(err)
		}
		for _, rel := range []string{pp, sp} {
			os.Chtimes(filepath.Join(dir, "evidence", rel), p.Time, p.Time)
		}
		p.Evidence = passage.Evidence{Plate: pp, Scene: sp}
		if err := d.link.sink.Record(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	permitP := mk(1, decide.Permit, decide.Open)
	charged := mk(2, decide.Unregistered, decide.OpenCharge)
	if got := testutil.ToFloat64(d.metrics.passages.WithLabelValues("in-1", "unregistered", "open_charge")); got != 1 {
		t.Errorf("anprd_passages_total for the charged passage = %v", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if n := cs.counter.WaitUnique(2, 10*time.Second); n != 2 {
		t.Fatalf("%d passages arrived", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := d.Outbox().Stats()
		if st.Entries == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not emptied: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Home Assistant has the lane's entities and states.
	deadline = time.Now().Add(10 * time.Second)
	for {
		haMu.Lock()
		configs := 0
		for k := range ha {
			if strings.HasPrefix(k, "homeassistant/") && strings.HasSuffix(k, "/config") {
				configs++
			}
		}
		passages := string(ha["anpr/v1/oslo-p1/box-1/ha/in-1/passages"])
		barrier := string(ha["anpr/v1/oslo-p1/box-1/ha/in-1/barrier"])
		haMu.Unlock()
		if configs == 5 && passages == "2" && barrier != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Home Assistant has %d configs, passages %q, barrier %q", configs, passages, barrier)
		}
		time.Sleep(20 * time.Millisecond)
	}

	exists := func(p passage.Passage) bool {
		_, err := os.Stat(filepath.Join(dir, "evidence", p.Evidence.Plate))
		return err == nil
	}
	plate := func(p passage.Passage) string {
		s, _ := d.Outbox().Get(p.ID)
		if s == nil || s.Passage.Read == nil {
			return ""
		}
		return s.Passage.Read.Plate
	}

	// A forged ack (another key) is refused.
	tp := protocol.Topics{Prefix: "anpr/v1", Site: "oslo-p1", Device: "box-1"}
	ackBody, _ := json.Marshal(protocol.Ack{ID: "a-1", Issued: t0, Passages: []passage.ID{charged.ID}})
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := protocol.Sign(other, tp.Ack(), ackBody)
	cs.c.Send(tp.Ack(), 1, false, forged)
	deadline = time.Now().Add(10 * time.Second)
	for gathered(t, d, "anprd_acks_rejected_total", "unknown_key") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the forged ack was not refused")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A week and a day on, the hourly round.
	now.Store(t0.Add(8 * 24 * time.Hour).UnixNano())
	if _, err := d.link.outbox.Retain(clock(), time.Duration(cfg.Retention.Evidence), d.evidence); err != nil {
		t.Fatal(err)
	}
	if exists(permitP) || plate(permitP) != "" {
		t.Error("the permit passage kept its images or plate past retention")
	}
	if !exists(charged) || plate(charged) != "EL43210" {
		t.Error("the charged passage lost its evidence before the ack")
	}

	// The central system's ack.
	genuine, _ := protocol.Sign(priv, tp.Ack(), ackBody)
	cs.c.Send(tp.Ack(), 1, false, genuine)
	deadline = time.Now().Add(10 * time.Second)
	for !d.Outbox().Acked(charged.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the ack was not applied")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := d.link.outbox.Retain(clock(), time.Duration(cfg.Retention.Evidence), d.evidence); err != nil {
		t.Fatal(err)
	}
	if exists(charged) || plate(charged) != "" {
		t.Error("the charged passage kept its evidence after the ack")
	}
}

// gathered is the value of the series of name whose one label has value.
func gathered(t *testing.T, d *Daemon, name, value string) float64 {
	t.Helper()
	for _, mf := range mustGather(t, d.Registry()) {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}
