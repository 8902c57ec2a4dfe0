package ack

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/state"
	"anprd/sync/outbox"
	"anprd/sync/protocol"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

var (
	topics = protocol.Topics{Prefix: "anpr/v1", Site: "oslo-p1", Device: "box-1"}
	now    = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
)

func key(seed string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(s[:])
}

// charged is a passage that needs follow-up: an unregistered car let in
// and charged.
func charged(t *testing.T, ob *outbox.Outbox, g *passage.Generator) passage.ID {
	t.Helper()
	d, _ := passage.FromDecision(decide.Decision{Class: decide.Unregistered, Reason: decide.NoMatch, Action: decide.OpenCharge, Plate: "EL43210"})
	p := passage.Passage{ID: g.New(now), Site: "oslo-p1", Device: "box-1", Lane: "in-1", Direction: "entry", Kind: passage.Vehicle, Time: now,
		Read: &passage.Read{Plate: "EL43210", Conf: 0.9}, Decision: d, Gate: passage.Gate{Action: passage.Opened, Passed: true}}
	if err := ob.Record(p); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func TestAck(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ob, err := outbox.Open(db.DB, outbox.Options{Max: 100})
	if err != nil {
		t.Fatal(err)
	}
	central := key("central")
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	h := New(ob, Options{Topics: topics, Key: central.Public().(ed25519.PublicKey), Now: func() time.Time { return now }, Log: zerolog.Nop(), Metrics: m})
	if h.Filter() != "anpr/v1/oslo-p1/box-1/to/ack" {
		t.Errorf("filter %s", h.Filter())
	}
	var g passage.Generator
	a, b := charged(t, ob, &g), charged(t, ob, &g)
	body := func(ids ...passage.ID) []byte {
		js, _ := json.Marshal(protocol.Ack{ID: "a-1", Issued: now, Passages: ids})
		return js
	}
	signed := func(k ed25519.PrivateKey, topic string, body []byte) []byte {
		env, err := protocol.Sign(k, topic, body)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}

	// Forged acks are refused, and release nothing.
	other := protocol.Topics{Prefix: "anpr/v1", Site: "oslo-p1", Device: "box-2"}
	forged := map[protocol.RejectReason][]byte{
		protocol.RejectUnknownKey:   signed(key("someone else"), topics.Ack(), body(a)),
		protocol.RejectUnsigned:     body(a),
		protocol.RejectBadSignature: signed(central, other.Ack(), body(a)), // signed for another box, replayed here
		protocol.RejectInvalid:      signed(central, topics.Ack(), []byte(`{"id":"a-1","issued":"2026-11-24T08:00:00Z","passages":[]}`)),
		protocol.RejectMalformed:    signed(central, topics.Ack(), []byte(`{"id":"a-1","issued":"2026-11-24T08:00:00Z","passages":["01KAT3H0V8Q4M6Z2C7N5R9B1DX"],"all":true}`)),
	}
	for want, payload := range forged {
		err := h.Handle(topics.Ack(), payload)
		if got := protocol.ReasonOf(err); err == nil || got != want {
			t.Errorf("%s: Handle = %v (%s)", want, err, got)
		}
		if got := testutil.ToFloat64(m.rejected.WithLabelValues(string(want))); got != 1 {
			t.Errorf("%s counted %v times", want, got)
		}
	}
	if !ob.Held(a) || ob.Acked(a) {
		t.Fatal("a forged ack released the passage")
	}
	// Without a central key everything is refused.
	keyless := New(ob, Options{Topics: topics, Log: zerolog.Nop()})
	if err := keyless.Handle(topics.Ack(), signed(central, topics.Ack(), body(a))); protocol.ReasonOf(err) != protocol.RejectNoKey {
		t.Errorf("keyless: %v", err)
	}

	// The real one releases a; an id this box does not hold is counted.
	var g2 passage.Generator
	stranger := g2.New(now.Add(time.Hour))
	if err := h.Handle(topics.Ack(), signed(central, topics.Ack(), body(a, stranger))); err != nil {
		t.Fatal(err)
	}
	if ob.Held(a) || !ob.Acked(a) || !ob.Held(b) {
		t.Error("ack not applied to a alone")
	}
	if testutil.ToFloat64(m.acks.WithLabelValues("applied")) != 1 || testutil.ToFloat64(m.acks.WithLabelValues("unknown")) != 1 {
		t.Error("ack outcomes not counted")
	}
	// A repeat changes nothing.
	if err := h.Handle(topics.Ack(), signed(central, topics.Ack(), body(a))); err != nil || !ob.Acked(a) || ob.Acked(b) {
		t.Errorf("repeat: %v", err)
	}
}
