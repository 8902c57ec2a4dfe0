package command_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"anprd/internal/passage"
	"anprd/internal/state"
	"anprd/sync/central"
	"anprd/sync/command"
	"anprd/sync/command/commandtest"
	"anprd/sync/outbox/outboxtest"
	"anprd/sync/protocol"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

var topics = protocol.Topics{Prefix: "anpr/v1", Site: "p1", Device: "box-1"}

type replies struct {
	mu sync.Mutex
	rs []protocol.Reply
}

func (r *replies) Send(topic string, qos byte, retain bool, payload []byte) error {
	if topic != topics.Reply() || qos != 1 || retain {
		panic("reply on " + topic)
	}
	var rep protocol.Reply
	if err := json.Unmarshal(payload, &rep); err != nil {
		panic(err)
	}
	r.mu.Lock()
	r.rs = append(r.rs, rep)
	r.mu.Unlock()
	return nil
}

func (r *replies) all() []protocol.Reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]protocol.Reply(nil), r.rs...)
}

type resyncs struct{ n []string }

func (r *resyncs) Resync(d string) { r.n = append(r.n, d) }

type fixture struct {
	h      *command.Handler
	opener *commandtest.Opener
	rec    *outboxtest.Recorder
	out    *replies
	res    *resyncs
	signer *central.Signer
	m      *command.Metrics
	reg    *prometheus.Registry
	close  func()
	log    *bytes.Buffer
	now    time.Time
	dir    string
}

func newFixture(t testing.TB, dir string) *fixture {
	t.Helper()
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeDB := func() { once.Do(func() { db.Close() }) }
	t.Cleanup(closeDB)
	seed := bytes.Repeat([]byte{7}, 32)
	priv := ed25519.NewKeyFromSeed(seed)
	reg := prometheus.NewRegistry()
	f := &fixture{opener: &commandtest.Opener{}, rec: &outboxtest.Recorder{}, out: &replies{}, res: &resyncs{},
		signer: &central.Signer{Key: priv, Prefix: "anpr/v1", Site: "p1"}, m: command.NewMetrics(reg), reg: reg, close: closeDB,
		log: new(bytes.Buffer), now: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), dir: dir}
	f.h, err = command.New(db.DB, f.out, command.Options{Topics: topics, Key: priv.Public().(ed25519.PublicKey), MaxAge: time.Minute,
		Lanes: []command.Lane{{ID: "in-1", Direction: "entry"}, {ID: "out-1", Direction: "exit"}}, Opener: f.opener,
		IDs: new(passage.Generator), Recorder: f.rec, Resync: f.res, Ping: func() (uint64, int) { return 42, 3 },
		Now: func() time.Time { return f.now }, Log: zerolog.New(f.log), Metrics: f.m})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// count is the value of the series of name whose label values, in the
// order of the label names, are labels.
func (f *fixture) count(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.Metric {
			if len(m.Label) != len(labels) {
				continue
			}
			for i, l := range m.Label {
				if l.GetValue() != labels[i] {
					continue metrics
				}
			}
			return m.Counter.GetValue()
		}
	}
	return 0
}

func (f *fixture) send(t testing.TB, c protocol.Command) {
	t.Helper()
	m, err := f.signer.Command("box-1", c)
	if err != nil {
		t.Fatal(err)
	}
	f.h.Handle(context.Background(), m.Topic, m.Payload)
}

func (f *fixture) last(t *testing.T) protocol.Reply {
	t.Helper()
	rs := f.out.all()
	if len(rs) == 0 {
		t.Fatal("no reply")
	}
	return rs[len(rs)-1]
}

func TestOpen(t *testing.T) {
	f := newFixture(t, t.TempDir())
	f.send(t, protocol.Command{ID: "c1", Type: protocol.CommandOpen, Issued: f.now.Add(-5 * time.Second), Lane: "out-1",
		Operator: "kari.nordmann", Reason: "ticket machine broken"})
	if got := f.opener.Opened(); len(got) != 1 || got[0] != "out-1" {
		t.Fatalf("opened %v", got)
	}
	r := f.last(t)
	ps := f.rec.Passages()
	if r.Status != protocol.ReplyDone || r.Command != "c1" || len(ps) != 1 || r.Passage != ps[0].ID.String() || r.Seq != 42 {
		t.Fatalf("reply %+v, passages %+v", r, ps)
	}
	p := ps[0]
	if p.Kind != passage.Manual || p.Lane != "out-1" || p.Direction != "exit" || p.Gate.Action != passage.Opened ||
		p.Manual.Source != "remote" || p.Manual.Operator != "kari.nordmann" || p.Manual.Reason != "ticket machine broken" || p.Manual.Command != "c1" {
		t.Errorf("audit passage %+v %+v", p, p.Manual)
	}
	// A barrier that does not open: the audit says so, the reply fails.
	f.opener.Fail(errors.New("barrier fault input active"))
	f.send(t, protocol.Command{ID: "c2", Type: protocol.CommandOpen, Issued: f.now, Lane: "in-1", Operator: "o", Reason: "r"})
	r = f.last(t)
	ps = f.rec.Passages()
	if r.Status != protocol.ReplyFailed || !strings.Contains(r.Error, "fault") || len(ps) != 2 || ps[1].Gate.Action != passage.Failed {
		t.Errorf("failed open: reply %+v, passage %+v", r, ps[len(ps)-1].Gate)
	}
	f.opener.Fail(nil)
	// An unknown lane.
	f.send(t, protocol.Command{ID: "c3", Type: protocol.CommandOpen, Issued: f.now, Lane: "in-9", Operator: "o", Reason: "r"})
	if r := f.last(t); r.Status != protocol.ReplyFailed || len(f.opener.Opened()) != 1 {
		t.Errorf("unknown lane: %+v", r)
	}
	// A lane that records the opening itself (with the vehicle that goes
	// through) gets the operator, reason and command; no second passage.
	f.opener.Records = true
	f.send(t, protocol.Command{ID: "c4", Type: protocol.CommandOpen, Issued: f.now, Lane: "in-1", Operator: "ola", Reason: "delivery"})
	if r, ps, ms := f.last(t), f.rec.Passages(), f.opener.Manual(); r.Status != protocol.ReplyDone || len(ps) != 2 ||
		ms[len(ms)-1] != (passage.ManualOpen{Source: "remote", Operator: "ola", Reason: "delivery", Command: "c4"}) {
		t.Errorf("open recorded by the lane: reply %+v, %d passages, asked %+v", r, len(ps), ms)
	}
	f.opener.Records = false
	// Label values in the order of the names: status, type.
	if n := f.count(t, "anprd_commands_carried_out_total", "done", "open"); n != 2 {
		t.Errorf("open/done %v", n)
	}
}

func TestResyncAndPing(t *testing.T) {
	f := newFixture(t, t.TempDir())
	f.send(t, protocol.Command{ID: "r1", Type: protocol.CommandResync, Issued: f.now})
	f.send(t, protocol.Command{ID: "p1", Type: protocol.CommandPing, Issued: f.now})
	rs := f.out.all()
	if len(rs) != 2 || rs[0].Status != protocol.ReplyDone || rs[1].Type != protocol.CommandPing || rs[1].Outbox != 3 || len(f.res.n) != 1 {
		t.Errorf("replies %+v, resyncs %v", rs, f.res.n)
	}
}

// TestRefused: too old, from the future, reused id (also after a
// restart), invalid, and anything not correctly signed: refused with a
// metric and a log line, the barrier never opened, nothing recorded.
func TestRefused(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, dir)
	open := func(id string, issued time.Time) protocol.Command {
		return protocol.Command{ID: id, Type: protocol.CommandOpen, Issued: issued, Lane: "in-1", Operator: "o", Reason: "r"}
	}
	// Carried out once...
	f.send(t, open("once", f.now))
	if len(f.opener.Opened()) != 1 {
		t.Fatal("first open not carried out")
	}
	signed := func(c protocol.Command) []byte {
		m, _ := f.signer.Command("box-1", c)
		return m.Payload
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	other := &central.Signer{Key: otherKey, Prefix: "anpr/v1", Site: "p1"}
	otherSigned, _ := other.Command("box-1", open("o1", f.now))
	forBox2, _ := f.signer.Command("box-2", open("b2", f.now))
	unsigned, _ := json.Marshal(open("u1", f.now))
	tests := []struct {
		name    string
		payload []byte
		reason  protocol.RejectReason
		replied bool
	}{
		{"replayed after its age", signed(open("old", f.now.Add(-61*time.Second))), protocol.RejectExpired, true},
		{"from the future", signed(open("future", f.now.Add(2*time.Minute))), protocol.RejectExpired, true},
		{"same id again", signed(open("once", f.now)), protocol.RejectReplayed, true},
		{"invalid", signed(protocol.Command{ID: "bad", Type: protocol.CommandOpen, Issued: f.now, Lane: "in-1"}), protocol.RejectInvalid, true},
		{"unknown type", signed(protocol.Command{ID: "t1", Type: "self-destruct", Issued: f.now}), protocol.RejectInvalid, true},
		{"signed by another key", otherSigned.Payload, protocol.RejectUnknownKey, false},
		{"signed for another box", forBox2.Payload, protocol.RejectBadSignature, false},
		{"unsigned", unsigned, protocol.RejectUnsigned, false},
		{"malformed", []byte(`{"v":1,"alg":"ed25519","sig":"x","body":{`), protocol.RejectMalformed, false},
		{"10 MB", make([]byte, 10<<20), protocol.RejectTooLarge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.count(t, "anprd_commands_rejected_total", string(tt.reason))
			replies := len(f.out.all())
			f.log.Reset()
			f.h.Handle(context.Background(), topics.Command(), tt.payload)
			if got := f.count(t, "anprd_commands_rejected_total", string(tt.reason)); got != before+1 {
				t.Errorf("rejected{reason=%s} %v -> %v; log %s", tt.reason, before, got, f.log)
			}
			if !strings.Contains(f.log.String(), "command refused") || !strings.Contains(f.log.String(), string(tt.reason)) {
				t.Errorf("log %s", f.log)
			}
			if len(f.opener.Opened()) != 1 || len(f.rec.Passages()) != 1 {
				t.Errorf("opened %v, recorded %d", f.opener.Opened(), len(f.rec.Passages()))
			}
			got := f.out.all()
			switch {
			case tt.replied && (len(got) != replies+1 || got[len(got)-1].Status != protocol.ReplyRefused || got[len(got)-1].Reason != string(tt.reason)):
				t.Errorf("replies %+v", got[replies:])
			case !tt.replied && len(got) != replies:
				t.Errorf("replied to an unverified command: %+v", got[replies:])
			}
		})
	}
}

// TestReplayAfterRestart: a command id carried out before a restart is
// refused after it.
func TestReplayAfterRestart(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, dir)
	c := protocol.Command{ID: "x1", Type: protocol.CommandOpen, Issued: f.now, Lane: "in-1", Operator: "o", Reason: "r"}
	m, _ := f.signer.Command("box-1", c)
	f.h.Handle(context.Background(), m.Topic, m.Payload)
	// The daemon restarts (the database is closed and opened again).
	f.close()
	g := newFixture(t, dir)
	g.h.Handle(context.Background(), m.Topic, m.Payload)
	if len(g.opener.Opened()) != 0 || g.last(t).Reason != string(protocol.RejectReplayed) {
		t.Errorf("replayed after restart: opened %v, reply %+v", g.opener.Opened(), g.last(t))
	}
	// Much later, the id is forgotten, but the command is too old anyway.
	g.now = g.now.Add(3 * time.Minute)
	g.h.Handle(context.Background(), m.Topic, m.Payload)
	if len(g.opener.Opened()) != 0 || g.last(t).Reason != string(protocol.RejectExpired) {
		t.Errorf("old replay: %+v", g.last(t))
	}
}

// FuzzHandle: nothing that arrives on the command topic crashes the
// handler, and nothing unsigned opens a barrier.
func FuzzHandle(f *testing.F) {
	fx := newFixture(f, f.TempDir())
	m, _ := fx.signer.Command("box-1", protocol.Command{ID: "seed", Type: protocol.CommandPing, Issued: fx.now})
	f.Add(m.Payload)
	f.Add([]byte(`{"v":1,"alg":"ed25519","key":"00","sig":"AAAA","body":{"id":"a","type":"open","lane":"in-1"}}`))
	f.Add([]byte(`{"id":"a","type":"open","issued":"2026-11-24T08:00:00Z","lane":"in-1","operator":"o","reason":"r"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		fx.h.Handle(context.Background(), topics.Command(), payload)
		if n := len(fx.opener.Opened()); n != 0 {
			t.Fatalf("a fuzzed command opened a barrier: %q", payload)
		}
	})
}
