package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"anprd/internal/health"
	"anprd/sync/mqtt"
	"anprd/sync/mqtt/mqtttest"
	"anprd/sync/outbox"
	"anprd/sync/protocol"
	"anprd/sync/telemetry"

	"github.com/rs/zerolog"
)

var (
	topics = protocol.Topics{Prefix: "anpr/v1", Site: "p1", Device: "box-1"}
	t0     = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
)

type msg struct {
	topic   string
	qos     byte
	retain  bool
	payload []byte
}

type fakeSender struct {
	mu   sync.Mutex
	down bool
	msgs []msg
}

func (f *fakeSender) Send(topic string, qos byte, retain bool, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("not connected")
	}
	f.msgs = append(f.msgs, msg{topic, qos, retain, payload})
	return nil
}

func (f *fakeSender) on(topic string) []msg {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []msg
	for _, m := range f.msgs {
		if m.topic == topic {
			out = append(out, m)
		}
	}
	return out
}

func TestEventsAndStatus(t *testing.T) {
	s := &fakeSender{}
	hr := health.NewRegistry(func() time.Time { return t0 })
	hr.Register("uplink").Set(health.Degraded, true, "broker away")
	tel := telemetry.New(s, telemetry.Options{Topics: topics, Version: "v1.2", Started: t0.Add(-time.Hour), Health: hr, Buffer: 3,
		Outbox: func() (outbox.Stats, error) {
			return outbox.Stats{Passages: 7, Entries: 9, Oldest: t0.Add(-90 * time.Second), Max: 100, Dropped: 1}, nil
		},
		Sync:     func() protocol.SyncState { return protocol.SyncState{Seq: 12} },
		Connects: func() uint64 { return 3 },
		Now:      func() time.Time { return t0 }, Log: zerolog.Nop()})

	tel.Report(protocol.Event{Lane: "in-1", Part: protocol.PartCamera, State: "degraded", Detail: "no frames"})
	if es := s.on(topics.Event()); len(es) != 1 || es[0].qos != 1 || es[0].retain {
		t.Fatalf("events %+v", es)
	}
	// Without a connection, events wait; the oldest give way beyond the buffer.
	s.down = true
	for i, st := range []string{"a", "b", "c", "d"} {
		tel.Report(protocol.Event{Lane: "in-1", Part: protocol.PartBarrier, State: st, Time: t0.Add(time.Duration(i) * time.Second)})
	}
	s.down = false
	tel.Connected()
	st := s.on(topics.Status())
	var status protocol.Status
	if len(st) != 1 || !st[0].retain || json.Unmarshal(st[0].payload, &status) != nil || status.State != protocol.Online || status.Version != "v1.2" {
		t.Fatalf("status %+v %+v", st, status)
	}
	es := s.on(topics.Event())
	var got []string
	for _, e := range es[1:] {
		var ev protocol.Event
		json.Unmarshal(e.payload, &ev)
		got = append(got, ev.State)
	}
	if len(got) != 3 || got[0] != "b" || got[2] != "d" {
		t.Errorf("events after reconnect %v, want b c d", got)
	}
	hb := s.on(topics.Heartbeat())
	var beat protocol.Heartbeat
	if len(hb) != 1 || hb[0].qos != 0 || json.Unmarshal(hb[0].payload, &beat) != nil {
		t.Fatalf("heartbeat %+v", hb)
	}
	if beat.Outbox.Passages != 7 || beat.Outbox.OldestAgeSeconds != 90 || beat.Sync.Seq != 12 || beat.Connects != 3 ||
		!beat.Ready || len(beat.Components) != 1 || beat.UptimeSeconds != 3600 {
		t.Errorf("heartbeat %+v", beat)
	}
	topic, will := telemetry.Will(topics)
	var w protocol.Status
	json.Unmarshal(will, &w)
	if topic != topics.Status() || w.State != protocol.Offline || w.Reason != protocol.ReasonLost {
		t.Errorf("will %s %s", topic, will)
	}
}

// TestWillThroughBroker: a connection cut without a word leaves the
// retained status offline (the broker publishes the will); reconnecting
// puts it back online; a clean stop leaves offline with reason shutdown.
func TestWillThroughBroker(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	proxy := mqtttest.NewProxy(t, b)
	watch, _ := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "central", Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond})
	states := make(chan protocol.Status, 16)
	watch.Subscribe("status", 1, 1<<20, func(r mqtt.Received) {
		var s protocol.Status
		json.Unmarshal(r.Payload, &s)
		states <- s
	}, topics.Status())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go watch.Run(ctx, nil)

	o := mqtt.Options{Broker: proxy.URL, ClientID: "box-1", Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	wt, wp := telemetry.Will(topics)
	o.Will = &mqtt.Message{Topic: wt, QoS: 1, Retain: true, Payload: wp}
	c, _ := mqtt.New(o)
	tel := telemetry.New(c, telemetry.Options{Topics: topics, Started: time.Now(), Log: zerolog.Nop()})
	c.OnConnect(tel.Connected)
	ectx, ecancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ectx, tel.Offline); close(done) }()

	want := func(state, reason string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case s := <-states:
				if s.State == state && s.Reason == reason {
					return
				}
			case <-deadline:
				t.Fatalf("no status %s/%s", state, reason)
			}
		}
	}
	want(protocol.Online, "")
	proxy.Drop()
	want(protocol.Offline, protocol.ReasonLost)
	want(protocol.Online, "")
	ecancel()
	<-done
	want(protocol.Offline, protocol.ReasonShutdown)
}
