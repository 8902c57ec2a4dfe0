// Package telemetry tells the central system how the box is: a retained
// status (online, or offline through the broker's last will or a clean
// shutdown), a heartbeat with the components' health, the outbox backlog
// and the permit sequence at a configured interval, and the state changes
// of lanes, cameras and barriers as they happen.
//
// Report never blocks: the lanes and the barrier code call it from their
// own loops. Events that cannot be sent (no connection) wait in a small
// buffer and go out on the next connection; beyond it the oldest are
// dropped and counted, since the heartbeat carries the state anyway.
// This package only reports; it changes nothing.
package telemetry

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"anprd/internal/health"
	"anprd/sync/outbox"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
)

// Sender publishes without following the delivery; *mqtt.Client is one.
type Sender interface {
	Send(topic string, qos byte, retain bool, payload []byte) error
}

// Options configure Telemetry.
type Options struct {
	Topics       protocol.Topics
	Version      string
	ConfigDigest string
	Started      time.Time
	Interval     time.Duration // heartbeat; default 60 s
	Health       *health.Registry
	// Outbox, Sync and Connects are read for each heartbeat; any may be nil.
	Outbox   func() (outbox.Stats, error)
	Sync     func() protocol.SyncState
	Connects func() uint64
	// Buffer is how many events wait while disconnected; default 256.
	Buffer  int
	Now     func() time.Time
	Log     zerolog.Logger
	Metrics *Metrics
}

// Telemetry publishes the box's state.
type Telemetry struct {
	o    Options
	send Sender
	m    *Metrics

	mu      sync.Mutex
	pending []protocol.Event
}

// New returns Telemetry publishing through send.
func New(send Sender, o Options) *Telemetry {
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := o.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Telemetry{o: o, send: send, m: m}
}

// Will is the last will to give the broker at each connect: the retained
// offline status, published by the broker if the connection drops.
func Will(t protocol.Topics) (topic string, payload []byte) {
	b, _ := json.Marshal(protocol.Status{State: protocol.Offline, Reason: protocol.ReasonLost, Site: t.Site, Device: t.Device})
	return t.Status(), b
}

func (t *Telemetry) status(state, reason string) []byte {
	b, _ := json.Marshal(protocol.Status{State: state, Reason: reason, Site: t.o.Topics.Site, Device: t.o.Topics.Device,
		Time: t.o.Now(), Version: t.o.Version, Started: t.o.Started, ConfigDigest: t.o.ConfigDigest})
	return b
}

// Connected publishes the online status, a heartbeat, and the events
// that waited. The broker client's connect hook calls it.
func (t *Telemetry) Connected() {
	if err := t.send.Send(t.o.Topics.Status(), protocol.QoSAtLeastOnce, true, t.status(protocol.Online, "")); err != nil {
		return
	}
	t.Heartbeat()
	t.mu.Lock()
	pending := t.pending
	t.pending = nil
	t.mu.Unlock()
	for i, e := range pending {
		if !t.publish(e) {
			t.mu.Lock()
			t.pending = append(pending[i:], t.pending...)
			t.mu.Unlock()
			return
		}
	}
}

// Offline publishes the offline status before a clean disconnect; the
// broker client calls it while still connected.
func (t *Telemetry) Offline(ctx context.Context) {
	t.send.Send(t.o.Topics.Status(), protocol.QoSAtLeastOnce, true, t.status(protocol.Offline, protocol.ReasonShutdown))
}

// Report publishes a state change of a lane, its camera or its barrier;
// without a connection it waits for the next one. It never blocks.
func (t *Telemetry) Report(e protocol.Event) {
	if e.Time.IsZero() {
		e.Time = t.o.Now()
	}
	t.m.events.WithLabelValues(string(e.Part)).Inc()
	t.mu.Lock()
	waiting := len(t.pending) > 0
	t.mu.Unlock()
	if !waiting && t.publish(e) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) >= t.o.Buffer {
		t.pending = t.pending[1:]
		t.m.dropped.Inc()
	}
	t.pending = append(t.pending, e)
}

func (t *Telemetry) publish(e protocol.Event) bool {
	b, _ := json.Marshal(e)
	return t.send.Send(t.o.Topics.Event(), protocol.QoSAtLeastOnce, false, b) == nil
}

// Beat is the heartbeat as it would be published now.
func (t *Telemetry) Beat() protocol.Heartbeat {
	now := t.o.Now()
	hb := protocol.Heartbeat{Time: now, Site: t.o.Topics.Site, Device: t.o.Topics.Device,
		UptimeSeconds: now.Sub(t.o.Started).Seconds(), Components: []health.Status{}}
	if t.o.Health != nil {
		hb.Ready, _ = t.o.Health.Ready()
		hb.Components = t.o.Health.Snapshot()
	}
	if t.o.Outbox != nil {
		if s, err := t.o.Outbox(); err == nil {
			hb.Outbox = protocol.OutboxState{Passages: s.Passages, Entries: s.Entries, Max: s.Max, Dropped: s.Dropped}
			if !s.Oldest.IsZero() {
				hb.Outbox.OldestAgeSeconds = now.Sub(s.Oldest).Seconds()
			}
		}
	}
	if t.o.Sync != nil {
		hb.Sync = t.o.Sync()
	}
	if t.o.Connects != nil {
		hb.Connects = t.o.Connects()
	}
	return hb
}

// Heartbeat publishes one heartbeat now.
func (t *Telemetry) Heartbeat() {
	b, _ := json.Marshal(t.Beat())
	if t.send.Send(t.o.Topics.Heartbeat(), protocol.QoSHeartbeat, false, b) == nil {
		t.m.heartbeats.Inc()
	}
}

// Run publishes a heartbeat every Interval until ctx ends.
func (t *Telemetry) Run(ctx context.Context) error {
	tick := time.NewTicker(t.o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			t.Heartbeat()
		}
	}
}
