package presencesync_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"anprd/internal/access"
	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/presence"
	"anprd/internal/state"
	"anprd/sync/mqtt"
	"anprd/sync/mqtt/mqtttest"
	"anprd/sync/outbox"
	"anprd/sync/presencesync"
	"anprd/sync/protocol"
	"anprd/sync/uplink"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

var t0 = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

func id(i int) passage.ID {
	var x passage.ID
	binary.BigEndian.PutUint64(x[8:], uint64(i))
	return x
}

func msg(t *testing.T, device string, i int, at time.Time, enter *presence.Vehicle, leave string) []byte {
	t.Helper()
	b, err := json.Marshal(protocol.Presence{Passage: id(i), Device: device, Time: at, Facility: "p1", Enter: enter, Leave: leave})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestApply(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, _ := presence.Open(db.DB)
	reg := prometheus.NewRegistry()
	m := presencesync.NewMetrics(reg)
	tp := protocol.Topics{Prefix: "anpr/v1", Site: "s1", Device: "box-1"}
	p := presencesync.New(store, presencesync.Options{Topics: tp, Facility: "p1", Log: zerolog.Nop(), Metrics: m})
	peer := protocol.Topics{Prefix: "anpr/v1", Site: "s1", Device: "box-2"}.Presence()
	inside := func(plate string) *presence.Vehicle {
		var v *presence.Vehicle
		store.View(func(tx *presence.Tx) error { v, _ = tx.Inside("p1", plate); return nil })
		return v
	}
	car := func(plate string, at time.Time) *presence.Vehicle {
		return &presence.Vehicle{Facility: "p1", Plate: plate, Entered: at, Lane: "in-2", Permit: "P1", Source: presence.FromLane}
	}

	p.Handle(peer, msg(t, "box-2", 1, t0, car("EL43210", t0), ""))
	v := inside("EL43210")
	if v == nil || v.Source != presence.FromPeer || v.Permit != "P1" {
		t.Fatalf("entry from a peer: %+v", v)
	}
	var n int
	store.View(func(tx *presence.Tx) error {
		n, _ = tx.Count(presence.Ref{Kind: presence.Permit, ID: "P1"}, t0.Add(-time.Hour), "p1", "XX")
		return nil
	})
	if n != 1 {
		t.Errorf("the peer's vehicle counts %d against its permit, want 1", n)
	}
	// A late exit from before the entry does not remove it.
	p.Handle(peer, msg(t, "box-2", 2, t0.Add(-time.Minute), nil, "EL43210"))
	if inside("EL43210") == nil {
		t.Error("a stale exit removed a later entry")
	}
	// The real exit does.
	p.Handle(peer, msg(t, "box-2", 3, t0.Add(time.Hour), nil, "EL43210"))
	if inside("EL43210") != nil {
		t.Error("exit not applied")
	}
	// Our own change, back from the broker, is ignored; so is another
	// facility's.
	p.Handle(tp.Presence(), msg(t, "box-1", 4, t0, car("AB12345", t0), ""))
	other, _ := json.Marshal(protocol.Presence{Passage: id(5), Device: "box-2", Time: t0, Facility: "p9",
		Enter: &presence.Vehicle{Facility: "p9", Plate: "AB12345", Entered: t0}})
	p.Handle(peer, other)
	if inside("AB12345") != nil {
		t.Error("own or other facility's change applied")
	}
	// Refused: a box speaking for another, malformed, invalid.
	for _, tt := range []struct {
		payload []byte
		reason  string
	}{
		{msg(t, "box-3", 6, t0, car("CD12345", t0), ""), "invalid"},
		{[]byte(`{"passage":`), "malformed"},
		{msg(t, "box-2", 7, t0, nil, ""), "invalid"},
		{msg(t, "box-2", 8, t0, car("cd 123", t0), ""), "invalid"},
	} {
		before := rejected(t, reg, tt.reason)
		p.Handle(peer, tt.payload)
		if rejected(t, reg, tt.reason) != before+1 {
			t.Errorf("%s not refused as %s", tt.payload, tt.reason)
		}
	}
	if inside("CD12345") != nil || inside("CD123") != nil {
		t.Error("a refused change was applied")
	}
}

// TestTwoBoxes: box A admits a car of a one-car permit; through a real
// broker, box B learns of it and refuses the permit to a second car.
func TestTwoBoxes(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	type box struct {
		db   *state.DB
		desk *access.Desk
		ob   *outbox.Outbox
		pres *presence.Store
	}
	oslo, _ := time.LoadLocation("Europe/Oslo")
	data := []permit.Change{
		{Op: permit.Put, Facility: &permit.Facility{ID: "p1"}},
		{Op: permit.Put, Product: &permit.Product{ID: "m", Facility: "p1", MaxVehicles: 3}},
		{Op: permit.Put, Permit: &permit.Permit{ID: "P1", Tenant: "t", Product: "m", Status: permit.Active,
			ValidFrom: permit.Date(2026, 1, 1), Plates: []string{"EL43210", "AB12345"}}},
	}
	newBox := func(dev, lane string) *box {
		db, err := state.Open(t.TempDir(), state.Migrations)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		ps, _ := permit.Open(db.DB)
		if err := ps.Apply(&permit.Batch{Seq: 1, Changes: data}); err != nil {
			t.Fatal(err)
		}
		pres, _ := presence.Open(db.DB)
		desk, err := access.New(ps, pres, []decide.Lane{{ID: lane, Kind: decide.Entrance, Facility: "p1", Location: oslo,
			Policy: decide.DefaultPolicy(decide.Entrance), MaxStay: 24 * time.Hour, MinConfidence: 0.5}})
		if err != nil {
			t.Fatal(err)
		}
		ob, _ := outbox.Open(db.DB, outbox.Options{Max: 1000})
		tp := protocol.Topics{Prefix: "anpr/v1", Site: "s1", Device: dev}
		c, _ := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: dev, Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond})
		peers := presencesync.New(pres, presencesync.Options{Topics: tp, Facility: "p1", Log: zerolog.Nop()})
		c.Subscribe("presence", 1, 1<<20, func(r mqtt.Received) { peers.Handle(r.Topic, r.Payload) }, peers.Filter())
		u := uplink.New(ob, c, uplink.Options{Topics: tp, Log: zerolog.Nop()})
		c.OnConnect(u.Connected)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); c.Run(ctx, nil) }()
		go func() { defer wg.Done(); u.Run(ctx) }()
		t.Cleanup(func() { cancel(); wg.Wait() })
		for !c.Connected() {
			time.Sleep(5 * time.Millisecond)
		}
		return &box{db: db, desk: desk, ob: ob, pres: pres}
	}
	a := newBox("box-a", "in-a")
	bb := newBox("box-b", "in-b")

	now := time.Date(2026, 4, 15, 8, 0, 0, 0, oslo)
	d, err := a.desk.Pass("in-a", decide.Read{Plate: "EL43210", Conf: 0.95, Time: now})
	if err != nil || d.Class != decide.Permit {
		t.Fatalf("box A: %+v %v", d, err)
	}
	// Box A hands the passage over as its lane will.
	pd, sess := passage.FromDecision(d)
	var g passage.Generator
	p := passage.Passage{ID: g.New(now), Site: "s1", Device: "box-a", Lane: "in-a", Direction: "entry", Kind: passage.Vehicle, Time: now,
		Read: &passage.Read{Plate: "EL43210", Conf: 0.95}, Decision: pd, Session: sess, Gate: passage.Gate{Action: passage.Opened, Passed: true},
		Presence: passage.PresenceOf("p1", d)}
	if err := a.ob.Record(p); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var v *presence.Vehicle
		bb.pres.View(func(tx *presence.Tx) error { v, _ = tx.Inside("p1", "EL43210"); return nil })
		if v != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("box B never learned of box A's entry")
		}
		time.Sleep(5 * time.Millisecond)
	}
	d2, err := bb.desk.Pass("in-b", decide.Read{Plate: "AB12345", Conf: 0.95, Time: now.Add(time.Minute)})
	if err != nil || d2.Class != decide.PermitInUse || d2.Action != decide.Deny {
		t.Errorf("box B, second car of the one-car permit: %s/%s %v", d2.Class, d2.Action, err)
	}
}

func rejected(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "anprd_presence_peers_rejected_total" {
			for _, m := range mf.Metric {
				if m.Label[0].GetValue() == reason {
					return m.Counter.GetValue()
				}
			}
		}
	}
	return 0
}
