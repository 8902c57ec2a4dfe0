package lane_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"anprd/camera/track"
	"anprd/gate"
	"anprd/gate/gatetest"
	"anprd/gate/lane"
	"anprd/gate/lane/lanetest"
	"anprd/internal/access"
	"anprd/internal/clock"
	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/permit/permittest"
	"anprd/internal/presence"
	"anprd/internal/state"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/rs/zerolog"
)

// The permit data of every test: one facility, a permit with two cars
// (one at a time), another permit, and nothing for ZZ99999.
const (
	carA = "AB12345"
	carB = "CD12345"
	carC = "EF12345" // on permit P2
	carZ = "ZZ99999"
)

// site is a real access desk on a real bbolt file, with the lanes of a
// garage.
type site struct {
	t    *testing.T
	desk *access.Desk
	pres *presence.Store
	db   *state.DB
	ids  passage.Generator
}

func newSite(t *testing.T) *site {
	store, db := permittest.Store(t,
		permit.Change{Op: permit.Put, Facility: &permit.Facility{ID: "f1"}},
		permit.Change{Op: permit.Put, Product: &permit.Product{ID: "m", Facility: "f1"}},
		permit.Change{Op: permit.Put, Permit: &permit.Permit{ID: "P1", Tenant: "t", Product: "m", Status: permit.Active,
			ValidFrom: permit.Date(1999, 1, 1), Plates: []string{carA, carB}}},
		permit.Change{Op: permit.Put, Permit: &permit.Permit{ID: "P2", Tenant: "t2", Product: "m", Status: permit.Active,
			ValidFrom: permit.Date(1999, 1, 1), Plates: []string{carC}}})
	pres, err := presence.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	var lanes []decide.Lane
	for id, k := range map[string]decide.LaneKind{"in-1": decide.Entrance, "in-2": decide.Entrance,
		"out-1": decide.Exit, "ff-in": decide.FreeFlowEntrance} {
		lanes = append(lanes, decide.Lane{ID: id, Kind: k, Facility: "f1", Location: time.UTC,
			Policy: decide.DefaultPolicy(k), AntiPassback: decide.PassbackSoft, MaxStay: 24 * time.Hour, MinConfidence: 0.5})
	}
	desk, err := access.New(store, pres, lanes)
	if err != nil {
		t.Fatal(err)
	}
	return &site{t: t, desk: desk, pres: pres, db: db}
}

func (s *site) inside() []string {
	s.t.Helper()
	vs, err := s.pres.List("f1")
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, v := range vs {
		out = append(out, v.Plate)
	}
	slices.Sort(out)
	return out
}

// rig is one lane on fake lines (nil lines: free-flow).
type rig struct {
	t        *testing.T
	s        *site
	lines    *gatetest.Lines
	l        *lane.Lane
	sink     *lanetest.Sink
	reg      *prometheus.Registry
	triggers int
	track    uint64
	cancel   context.CancelFunc
	done     chan error
}

type rigOptions struct {
	lane   string
	dir    string
	wired  []gate.Line // nil: free-flow
	init   map[gate.Line]bool
	gate   gate.Options
	fail   func(*lanetest.Sink)
	noLoop bool

	readTimeout time.Duration
}

func (s *site) lane(o rigOptions) *rig {
	t := s.t
	r := &rig{t: t, s: s, sink: lanetest.NewSink(), reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	lo := lane.Options{Site: "s1", Device: "box-1", Lane: o.lane, Direction: o.dir, Desk: s.desk, Sink: r.sink,
		IDs: &s.ids, Log: zerolog.Nop(), Metrics: lane.NewMetrics(r.reg), Trigger: func() { r.triggers++ },
		ReadTimeout: o.readTimeout}
	if o.wired != nil {
		r.lines = gatetest.New(clock.Real{}, o.wired...)
		for l, v := range o.init {
			r.lines.Init(l, v)
		}
		o.gate.Lane, o.gate.Log = o.lane, zerolog.Nop()
		o.gate.Metrics = gate.NewMetrics(r.reg)
		b, err := gate.New(r.lines, o.gate)
		if err != nil {
			t.Fatal(err)
		}
		lo.Barrier = b
	}
	l, err := lane.New(lo)
	if err != nil {
		t.Fatal(err)
	}
	r.l = l
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- l.Run(ctx) }()
	synctest.Wait()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

var barrierLines = gatetest.All

var closed = map[gate.Line]bool{gate.LineClosedSwitch: true}

func (r *rig) sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func (r *rig) drive(l gate.Line, v bool) {
	r.lines.Drive(l, v)
	synctest.Wait()
}

// read is the camera reporting a vehicle: an early event, and later
// (final) the same track again with its evidence.
func (r *rig) read(plate string, conf float32) uint64 {
	r.track++
	r.l.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Early, Plate: plate, Conf: conf, TrackID: r.track,
		First: time.Now().Add(-200 * time.Millisecond), Last: time.Now(), Frames: []uint64{1, 2}}})
	synctest.Wait()
	return r.track
}

func (r *rig) final(id uint64, plate string) {
	r.l.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Final, Plate: plate, Conf: 0.95, TrackID: id, Last: time.Now()},
		Evidence: passage.Evidence{Plate: fmt.Sprintf("ev/%d-plate.jpg", id), Scene: fmt.Sprintf("ev/%d-scene.jpg", id)}})
	synctest.Wait()
}

// The arm, played on the position switches (the fake lines do not move).
func (r *rig) armUp() {
	r.drive(gate.LineClosedSwitch, false)
	r.sleep(2 * time.Second)
	r.drive(gate.LineOpenSwitch, true)
}

func (r *rig) armDown() {
	r.drive(gate.LineOpenSwitch, false)
	r.sleep(2 * time.Second)
	r.drive(gate.LineClosedSwitch, true)
}

// through drives a vehicle over the safety loop, leaving the arming loop.
func (r *rig) through() {
	r.drive(gate.LineSafety, true)
	r.sleep(500 * time.Millisecond)
	if r.lines.Has(gate.LineArming) {
		r.drive(gate.LineArming, false)
	}
	r.sleep(500 * time.Millisecond)
	r.drive(gate.LineSafety, false)
	r.sleep(time.Second)
}

func (r *rig) opens() int {
	n := 0
	for _, s := range r.lines.Sets() {
		if s.Line == gate.LineOpen && s.Active {
			n++
		}
	}
	return n
}

// stop stops the lane as the daemon does at shutdown.
func (r *rig) stop() {
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
	r.done <- nil
}

// want is what a test expects of one passage.
type want struct {
	kind   passage.Kind
	gate   passage.GateAction
	passed bool
	class  decide.Class
	plate  string // of the read
}

func (w want) String() string {
	return fmt.Sprintf("%s/%s/passed=%v/%s/%s", w.kind, w.gate, w.passed, w.class, w.plate)
}

func got(p passage.Passage) want {
	w := want{kind: p.Kind, gate: p.Gate.Action, passed: p.Gate.Passed}
	if p.Decision != nil {
		w.class = p.Decision.Class
	}
	if p.Read != nil {
		w.plate = p.Read.Plate
	}
	return w
}

// passages checks what the sink has, and that each passage is valid and
// its timings in order.
func (r *rig) passages(ws ...want) []passage.Passage {
	r.t.Helper()
	ps := r.sink.Passages()
	var g, w []string
	for _, p := range ps {
		g = append(g, got(p).String())
		if err := p.Validate(); err != nil {
			r.t.Errorf("passage %s invalid: %v", p.ID, err)
		}
		// A vehicle let in: trigger, read, decision, command, through, in
		// that order. One that went through on an opening not its own is
		// decided once through.
		tm := p.Timings
		seq := []time.Time{tm.Trigger, tm.FirstRead, tm.Decided, tm.Command, tm.Passed}
		if tm.FirstRead.Before(tm.Trigger) {
			seq[0] = time.Time{} // read on the way to the loop
		}
		switch {
		case p.Kind == passage.Manual:
			// The read is of the vehicle that waited; the decision is
			// made once it is through.
			seq = []time.Time{tm.Trigger, tm.Command, tm.Passed, tm.Decided}
		case tm.Command.IsZero() && !tm.Passed.IsZero() && !tm.Decided.IsZero():
			seq = []time.Time{tm.Trigger, tm.Passed, tm.Decided}
		}
		var prev time.Time
		for _, x := range seq {
			if x.IsZero() {
				continue
			}
			if x.Before(prev) {
				r.t.Errorf("passage %s: timings out of order: %+v", got(p), tm)
			}
			prev = x
		}
		if p.Site != "s1" || p.Device != "box-1" || p.Lane == "" || p.ID.IsZero() {
			r.t.Errorf("passage %s: ids %q %q %q %v", got(p), p.Site, p.Device, p.Lane, p.ID)
		}
	}
	for _, x := range ws {
		w = append(w, x.String())
	}
	if !slices.Equal(g, w) {
		r.t.Fatalf("passages\n got %v\nwant %v", g, w)
	}
	return ps
}

func (r *rig) inside(want ...string) {
	r.t.Helper()
	if got := r.s.inside(); !slices.Equal(got, want) {
		r.t.Errorf("inside %v, want %v", got, want)
	}
}

func TestLane(t *testing.T) {
	entry := rigOptions{lane: "in-1", dir: "entry", wired: barrierLines, init: closed}
	tests := []struct {
		name string
		o    rigOptions
		run  func(r *rig)
	}{{
		name: "normal entry",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			if r.triggers != 1 {
				r.t.Errorf("camera triggered %d times", r.triggers)
			}
			r.sleep(150 * time.Millisecond) // the camera reads
			id := r.read(carA, 0.97)
			if r.opens() != 1 {
				r.t.Fatal("barrier not opened")
			}
			// The decision journaled the passage, in its transaction.
			es, err := access.Pending(r.s.db.DB)
			if err != nil || len(es) != 1 || es[0].Passage.Decision.Plate != carA || es[0].Passage.Gate.Action != passage.Opened ||
				!es[0].Recovered().Gate.PassedUnknown {
				r.t.Fatalf("journal at the decision: %+v, %v", es, err)
			}
			r.armUp()
			r.through()
			r.armDown()
			r.passages() // waiting for the evidence
			// Meanwhile the journal knows the car went through.
			if es, _ := access.Pending(r.s.db.DB); len(es) != 1 || !es[0].Passage.Gate.Passed || es[0].Recovered().Gate.PassedUnknown ||
				es[0].Passage.Presence == nil {
				r.t.Errorf("journal once through: %+v", es)
			}
			r.final(id, carA)
			ps := r.passages(want{passage.Vehicle, passage.Opened, true, decide.Permit, carA})
			p := ps[0]
			tm := p.Timings
			if tm.FirstRead.Sub(tm.Trigger) != 150*time.Millisecond || tm.Command.IsZero() || tm.Passed.Sub(tm.Command) < 2*time.Second {
				r.t.Errorf("timings %+v", tm)
			}
			if !p.Time.Equal(tm.Passed) || p.Evidence.Plate != fmt.Sprintf("ev/%d-plate.jpg", id) || p.Direction != "entry" {
				r.t.Errorf("passage %+v", p)
			}
			if p.Decision.Permit != "P1" || p.Read.Conf != 0.97 || p.Read.Frames != 2 {
				r.t.Errorf("decision %+v read %+v", p.Decision, p.Read)
			}
			// One passage: the journal's ID; it carries its presence change
			// for the site's other boxes.
			if p.ID != es[0].Passage.ID || p.Presence == nil || p.Presence.Enter == nil || p.Presence.Enter.Plate != carA {
				r.t.Errorf("passage %s presence %+v; journaled as %s", p.ID, p.Presence, es[0].Passage.ID)
			}
			r.inside(carA)
		},
	}, {
		name: "denied entry",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.read(carZ, 0.97)
			if r.opens() != 0 {
				r.t.Fatal("barrier opened for an unregistered car")
			}
			r.sleep(8 * time.Second) // no final event: recorded without evidence
			r.passages(want{passage.Vehicle, passage.Kept, false, decide.Unregistered, carZ})
			r.drive(gate.LineArming, false)
			r.inside()
		},
	}, {
		name: "the car on the loop was read on its way in",
		o:    entry,
		run: func(r *rig) {
			id := r.read(carA, 0.97) // not on the loop yet: not decided
			if r.opens() != 0 {
				r.t.Fatal("opened for a car not at the barrier")
			}
			r.sleep(time.Second)
			r.drive(gate.LineArming, true)
			if r.opens() != 1 {
				r.t.Fatal("not opened when the car reached the loop")
			}
			r.final(id, carA)
			r.armUp()
			r.through()
			r.sleep(time.Second)
			ps := r.passages(want{passage.Vehicle, passage.Opened, true, decide.Permit, carA})
			if tm := ps[0].Timings; tm.Trigger.Sub(tm.FirstRead) != time.Second {
				r.t.Errorf("read a second before the loop: timings %+v", tm)
			}
		},
	}, {
		name: "a slow approach: read long before the loop, still in view",
		o:    entry,
		run: func(r *rig) {
			r.read(carA, 0.97)
			r.sleep(20 * time.Second) // no final event: the car is still in view
			r.drive(gate.LineArming, true)
			if r.opens() != 1 {
				r.t.Fatal("not opened for a car read on its slow way in")
			}
		},
	}, {
		name: "a car that drove past long ago is not the one on the loop",
		o:    entry,
		run: func(r *rig) {
			id := r.read(carA, 0.97)
			r.final(id, carA)
			r.sleep(20 * time.Second)
			r.drive(gate.LineArming, true)
			if r.opens() != 0 {
				r.t.Fatal("opened on an old read of a car gone from view")
			}
		},
	}, {
		name: "reversing out: no entry, the permit is free for the other car",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.read(carA, 0.97)
			r.armUp()
			r.inside(carA) // held while the car is at the barrier
			r.drive(gate.LineArming, false)
			r.sleep(30 * time.Second) // close_timeout
			r.armDown()
			r.sleep(8 * time.Second)
			ps := r.passages(want{passage.Vehicle, passage.Opened, false, decide.Permit, carA})
			if ps[0].Presence != nil || ps[0].Gate.PassedUnknown {
				r.t.Errorf("passage of a car that backed out: presence %+v gate %+v", ps[0].Presence, ps[0].Gate)
			}
			es, _ := access.Pending(r.s.db.DB)
			if len(es) != 1 || !es[0].NotThrough || es[0].Recovered().Gate.PassedUnknown {
				r.t.Errorf("journal of a car that backed out: %+v", es)
			}
			r.inside()
			// The other car of the permit is let in.
			r.drive(gate.LineArming, true)
			r.read(carB, 0.97)
			if r.opens() != 2 {
				r.t.Fatal("second car of the permit not let in")
			}
		},
	}, {
		name: "tailgating: the refused car slips through on the first car's opening",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.read(carA, 0.97)
			r.armUp()
			r.drive(gate.LineSafety, true)
			r.drive(gate.LineArming, false)
			r.drive(gate.LineArming, true) // the second car right behind
			r.read(carZ, 0.96)
			r.drive(gate.LineSafety, false)
			r.sleep(time.Second) // car A through; closing
			r.drive(gate.LineOpenSwitch, false)
			r.drive(gate.LineSafety, true) // car Z under the closing arm: reopens
			r.drive(gate.LineOpenSwitch, true)
			r.drive(gate.LineArming, false)
			r.drive(gate.LineSafety, false)
			r.sleep(time.Second)
			r.armDown()
			r.sleep(8 * time.Second)
			r.passages(
				want{passage.Vehicle, passage.Opened, true, decide.Permit, carA},
				want{passage.Vehicle, passage.Kept, false, decide.Unregistered, carZ},
				want{passage.Tailgate, passage.Opened, true, decide.Unregistered, carZ})
			r.inside(carA, carZ) // both are inside; Z counts against nothing
		},
	}, {
		name: "tailgating by a refused car that waited long behind the loop",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.read(carZ, 0.96) // refused; it waits, still in view
			r.drive(gate.LineArming, false)
			r.sleep(time.Minute)
			r.drive(gate.LineArming, true) // car A overtakes it onto the loop
			r.read(carA, 0.97)
			r.armUp()
			r.through()
			r.through() // and car Z right behind it
			r.sleep(8 * time.Second)
			r.passages(
				want{passage.Vehicle, passage.Kept, false, decide.Unregistered, carZ},
				want{passage.Vehicle, passage.Opened, true, decide.Permit, carA},
				want{passage.Tailgate, passage.Opened, true, decide.Unregistered, carZ})
		},
	}, {
		name: "tailgating unread",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.read(carA, 0.97)
			r.armUp()
			r.through()
			r.through() // a second vehicle the camera did not read
			r.sleep(8 * time.Second)
			r.passages(
				want{passage.Tailgate, passage.Opened, true, decide.Unreadable, ""},
				want{passage.Vehicle, passage.Opened, true, decide.Permit, carA})
		},
	}, {
		name: "safety loop stuck occupied: the barrier stays up, then the car goes",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.read(carA, 0.97)
			r.armUp()
			r.drive(gate.LineSafety, true)
			r.drive(gate.LineArming, false)
			r.sleep(15 * time.Minute) // longer than the visit timeout
			if st, _ := r.lines.Output(gate.LineClose), 0; st {
				r.t.Fatal("close relay on")
			}
			for _, s := range r.lines.Sets() {
				if s.Line == gate.LineClose && s.Active {
					r.t.Fatal("close commanded with the safety loop occupied")
				}
			}
			r.passages()
			r.drive(gate.LineSafety, false)
			r.sleep(10 * time.Second)
			r.passages(want{passage.Vehicle, passage.Opened, true, decide.Permit, carA})
			r.inside(carA)
		},
	}, {
		name: "position switch never confirms: fault; refused while in fault",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.read(carA, 0.97)
			r.drive(gate.LineClosedSwitch, false) // the arm starts, then stops
			r.sleep(10 * time.Second)
			r.drive(gate.LineArming, false)
			// In fault, failing secure: the next car with a permit is not
			// let in, and its place is not taken.
			r.drive(gate.LineArming, true)
			r.read(carC, 0.97)
			r.drive(gate.LineArming, false)
			r.drive(gate.LineClosedSwitch, true) // the arm drops back: recovered
			r.sleep(8 * time.Second)
			ps := r.passages(
				want{passage.Vehicle, passage.Opened, false, decide.Permit, carA},
				want{passage.Vehicle, passage.Failed, false, decide.Permit, carC})
			if !strings.Contains(ps[0].Gate.Fault, "open switch did not confirm") || !strings.Contains(ps[1].Gate.Fault, "open switch did not confirm") {
				r.t.Errorf("faults %q, %q", ps[0].Gate.Fault, ps[1].Gate.Fault)
			}
			r.inside()
		},
	}, {
		name: "restarted under an open barrier: no blind close, the car through is recorded",
		o:    rigOptions{lane: "in-1", dir: "entry", wired: barrierLines, init: map[gate.Line]bool{gate.LineOpenSwitch: true}},
		run: func(r *rig) {
			closes := func() int {
				n := 0
				for _, s := range r.lines.Sets() {
					if s.Line == gate.LineClose && s.Active {
						n++
					}
				}
				return n
			}
			r.sleep(20 * time.Second)
			if closes() != 0 {
				r.t.Fatal("closed blindly after the restart")
			}
			r.read(carA, 0.97) // read, but not on the arming loop: not decided
			r.through()        // a car let in before the restart
			if closes() != 1 {
				r.t.Fatal("not closed behind the car")
			}
			r.sleep(8 * time.Second)
			r.passages(want{passage.Vehicle, passage.Opened, true, decide.Permit, carA})
			r.inside(carA)
		},
	}, {
		name: "button: opened by staff for the refused car, with its read",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			id := r.read(carZ, 0.97)
			r.final(id, carZ)
			r.sleep(40 * time.Second) // the driver rings the intercom
			r.drive(gate.LineButton, true)
			r.drive(gate.LineButton, false)
			if r.opens() != 1 {
				r.t.Fatal("button did not open")
			}
			r.armUp()
			r.through()
			r.sleep(time.Second)
			ps := r.passages(
				want{passage.Vehicle, passage.Kept, false, decide.Unregistered, carZ},
				want{passage.Manual, passage.Opened, true, decide.Unregistered, carZ})
			if m := ps[1].Manual; m == nil || m.Source != "button" || ps[1].Evidence.Scene == "" {
				r.t.Errorf("manual %+v evidence %+v", m, ps[1].Evidence)
			}
			if tm := ps[1].Timings; tm.Decided.IsZero() || tm.FirstRead.IsZero() {
				r.t.Errorf("manual timings %+v", tm)
			}
			r.inside(carZ)
		},
	}, {
		name: "remote opening, nobody through",
		o:    entry,
		run: func(r *rig) {
			ctx := context.Background()
			if err := r.l.OpenManual(ctx, passage.ManualOpen{Source: "remote", Operator: "ops"}); err == nil {
				r.t.Error("remote opening without a reason accepted")
			}
			if err := r.l.OpenManual(ctx, passage.ManualOpen{Source: "remote", Operator: "ops", Reason: "delivery van"}); err != nil {
				r.t.Fatal(err)
			}
			synctest.Wait()
			r.armUp()
			r.sleep(30 * time.Second)
			r.armDown()
			ps := r.passages(want{passage.Manual, passage.Opened, false, "", ""})
			if m := ps[0].Manual; m.Operator != "ops" || m.Reason != "delivery van" {
				r.t.Errorf("manual %+v", m)
			}
		},
	}, {
		name: "remote opening for the refused car: one manual passage with its read, no tailgater",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			id := r.read(carZ, 0.97)
			r.final(id, carZ)
			r.sleep(time.Minute) // the operator is called
			if err := r.l.OpenManual(context.Background(), passage.ManualOpen{Source: "remote", Operator: "ops-1",
				Reason: "ticket machine broken", Command: "c-7"}); err != nil {
				r.t.Fatal(err)
			}
			synctest.Wait()
			r.armUp()
			r.through()
			r.sleep(time.Second)
			ps := r.passages(
				want{passage.Vehicle, passage.Kept, false, decide.Unregistered, carZ},
				want{passage.Manual, passage.Opened, true, decide.Unregistered, carZ})
			if m := ps[1].Manual; m.Source != "remote" || m.Operator != "ops-1" || m.Command != "c-7" {
				r.t.Errorf("manual %+v", m)
			}
			r.inside(carZ)
		},
	}, {
		name: "a site's read timeout",
		o:    rigOptions{lane: "in-1", dir: "entry", wired: barrierLines, init: closed, readTimeout: 10 * time.Second},
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.sleep(9 * time.Second)
			r.passages()
			r.sleep(time.Second)
			r.passages(want{passage.Vehicle, passage.Kept, false, decide.Unreadable, ""})
		},
	}, {
		name: "no read: decided unreadable at the read timeout",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.sleep(4 * time.Second)
			r.passages(want{passage.Vehicle, passage.Kept, false, decide.Unreadable, ""})
			// The camera reads it after all: decided again.
			r.read(carA, 0.97)
			if r.opens() != 1 {
				r.t.Fatal("not opened once read")
			}
		},
	}, {
		name: "a suppressed read of a car back on the loop is decided",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.track++
			r.l.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Early, Plate: carA, Conf: 0.97, TrackID: r.track, Suppressed: true}})
			synctest.Wait()
			if r.opens() != 1 {
				r.t.Fatal("suppressed read of the car on the loop not decided")
			}
		},
	}, {
		name: "shutdown with a car let in: recorded as not through, barrier closed",
		o:    entry,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.read(carA, 0.97)
			r.armUp()
			r.stop()
			r.passages(want{passage.Vehicle, passage.Opened, false, decide.Permit, carA})
			r.inside()
			var closeCmd bool
			for _, s := range r.lines.Sets() {
				closeCmd = closeCmd || (s.Line == gate.LineClose && s.Active)
			}
			if !closeCmd {
				r.t.Error("barrier not closed at shutdown (fail-secure)")
			}
		},
	}, {
		name: "outbox refusing: kept, retried, in order",
		o:    entry,
		run: func(r *rig) {
			r.sink.Fail(errors.New("disk full"))
			r.drive(gate.LineArming, true)
			r.read(carZ, 0.97)
			r.sleep(8 * time.Second)
			r.drive(gate.LineArming, false)
			r.drive(gate.LineArming, true)
			id := r.read(carA, 0.97)
			r.armUp()
			r.through()
			if n := r.sink.Calls(); n < 2 {
				r.t.Fatalf("%d record calls", n)
			}
			r.passages()
			// The outbox is back, but the first passage waits for its
			// retry: the second, ready now, must not overtake it.
			r.sink.Fail(nil)
			r.final(id, carA)
			r.sleep(30 * time.Second)
			r.passages(
				want{passage.Vehicle, passage.Kept, false, decide.Unregistered, carZ},
				want{passage.Vehicle, passage.Opened, true, decide.Permit, carA})
		},
	}, {
		name: "exit: the session closes; a car that backs out stays inside",
		o:    rigOptions{lane: "out-1", dir: "exit", wired: barrierLines, init: closed},
		run: func(r *rig) {
			for _, p := range []string{carA, carZ} {
				if _, err := r.s.desk.Pass("in-1", decide.Read{Plate: p, Conf: 0.9, Time: time.Now().Add(-time.Hour)}); err != nil {
					r.t.Fatal(err)
				}
			}
			// carZ was refused at the entrance: only carA is inside.
			r.inside(carA)
			r.drive(gate.LineArming, true)
			r.read(carA, 0.97)
			r.armUp()
			r.through()
			r.armDown()
			r.sleep(8 * time.Second)
			ps := r.passages(want{passage.Vehicle, passage.Opened, true, decide.Permit, carA})
			if s := ps[0].Session; s == nil || s.EntryLane != "in-1" || !s.Exited.After(s.Entered) {
				r.t.Errorf("session %+v", s)
			}
			r.inside()
			// A car that comes to the exit and turns back is still inside.
			if _, err := r.s.desk.Pass("in-1", decide.Read{Plate: carB, Conf: 0.9, Time: time.Now()}); err != nil {
				r.t.Fatal(err)
			}
			r.drive(gate.LineArming, true)
			r.read(carB, 0.97)
			r.armUp()
			r.inside()
			r.drive(gate.LineArming, false)
			r.sleep(30 * time.Second)
			r.armDown()
			r.inside(carB)
		},
	}, {
		name: "exit lets an unread car out",
		o:    rigOptions{lane: "out-1", dir: "exit", wired: barrierLines, init: closed},
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.sleep(4 * time.Second)
			if r.opens() != 1 {
				r.t.Fatal("exit kept an unread car in")
			}
		},
	}, {
		name: "barrier lane without an arming loop: the camera's read starts it",
		o:    rigOptions{lane: "in-1", dir: "entry", wired: []gate.Line{gate.LineClose, gate.LineOpenSwitch, gate.LineClosedSwitch}, init: closed},
		run: func(r *rig) {
			id := r.read(carA, 0.97)
			r.armUp()
			r.through()
			r.final(id, carA)
			ps := r.passages(want{passage.Vehicle, passage.Opened, true, decide.Permit, carA})
			if tm := ps[0].Timings; !tm.Trigger.Equal(tm.FirstRead.Add(-200 * time.Millisecond)) {
				r.t.Errorf("trigger %v, want the track's first frame", tm)
			}
			if r.triggers != 0 {
				r.t.Errorf("%d triggers without a loop", r.triggers)
			}
		},
	}, {
		name: "free-flow lane: every vehicle, no barrier",
		o:    rigOptions{lane: "ff-in", dir: "entry"},
		run: func(r *rig) {
			a := r.read(carA, 0.97)
			z := r.read(carZ, 0.95)
			r.final(a, carA)
			r.final(z, carZ)
			r.track++ // a vehicle read only in its final event, unsure
			r.l.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Final, Plate: "XX11111", Conf: 0.3, TrackID: r.track}})
			r.track++ // a repeat the tracker suppressed: not a second passage
			r.l.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Early, Plate: carA, Conf: 0.97, TrackID: r.track, Suppressed: true}})
			synctest.Wait()
			ps := r.passages(
				want{passage.Vehicle, passage.NoBarrier, true, decide.Permit, carA},
				want{passage.Vehicle, passage.NoBarrier, true, decide.Unregistered, carZ},
				want{passage.Vehicle, passage.NoBarrier, true, decide.Unreadable, "XX11111"})
			if ps[1].Decision.Action != decide.OpenCharge || ps[1].Evidence.Plate == "" {
				r.t.Errorf("unregistered at free-flow: %+v %+v", ps[1].Decision, ps[1].Evidence)
			}
			r.inside(carA, carZ)
			if err := r.l.OpenManual(context.Background(), passage.ManualOpen{Source: "remote", Operator: "o", Reason: "r"}); !errors.Is(err, lane.ErrNoBarrier) {
				r.t.Errorf("manual opening at free-flow: %v", err)
			}
		},
	}, {
		name: "power on failing open with the position unknown: the car through is recorded",
		o: rigOptions{lane: "in-1", dir: "entry", wired: []gate.Line{gate.LineArming, gate.LineClose},
			gate: gate.Options{FailOpen: true}},
		run: func(r *rig) {
			if r.opens() != 1 {
				r.t.Fatal("failing open did not open at power on")
			}
			r.drive(gate.LineArming, true)
			r.read(carA, 0.97)
			r.through()
			r.sleep(8 * time.Second)
			r.passages(want{passage.Vehicle, passage.Opened, true, decide.Permit, carA})
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSite(t)
				r := s.lane(tt.o)
				tt.run(r)
			})
		})
	}
}

// TestConcurrentLanes: two entrances, one permit with two cars. While
// the first car is at one barrier, the second is refused at the other;
// when the first backs out, the second is let in.
func TestConcurrentLanes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSite(t)
		a := s.lane(rigOptions{lane: "in-1", dir: "entry", wired: barrierLines, init: closed})
		b := s.lane(rigOptions{lane: "in-2", dir: "entry", wired: barrierLines, init: closed})
		a.drive(gate.LineArming, true)
		b.drive(gate.LineArming, true)
		// Both read at the same moment: bbolt's one writer orders them.
		a.l.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Early, Plate: carA, Conf: 0.97, TrackID: 1}})
		b.l.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Early, Plate: carB, Conf: 0.97, TrackID: 1}})
		a.track, b.track = 1, 1
		synctest.Wait()
		if a.opens()+b.opens() != 1 {
			t.Fatalf("opened %d and %d: both cars of a one-car permit let in", a.opens(), b.opens())
		}
		first, second := a, b
		if b.opens() == 1 {
			first, second = b, a
		}
		first.armUp()
		first.drive(gate.LineArming, false) // backs out
		second.drive(gate.LineArming, false)
		first.sleep(30 * time.Second)
		first.armDown()
		second.drive(gate.LineArming, true)
		second.read(map[*rig]string{a: carA, b: carB}[second], 0.97)
		if second.opens() != 1 {
			t.Fatal("the other car not let in after the first backed out")
		}
		second.armUp()
		second.through()
		second.sleep(10 * time.Second)
		if got := s.inside(); len(got) != 1 {
			t.Errorf("inside %v", got)
		}
	})
}

func TestMetricsLint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSite(t)
		r := s.lane(rigOptions{lane: "in-1", dir: "entry", wired: barrierLines, init: closed})
		r.drive(gate.LineArming, true)
		r.read(carA, 0.97)
		r.armUp()
		r.through()
		r.sleep(10 * time.Second)
		mfs, err := r.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
		names := map[string]bool{}
		for _, mf := range mfs {
			names[mf.GetName()] = true
		}
		for _, n := range []string{"anprd_lane_passages_total", "anprd_lane_step_seconds", "anprd_gate_transitions_total"} {
			if !names[n] {
				t.Errorf("no %s", n)
			}
		}
	})
}

// failingDesk is a desk whose database has failed.
type failingDesk struct{ calls int }

func (d *failingDesk) ReserveJournal(string, decide.Read, access.Draft) (*access.Reservation, error) {
	d.calls++
	return nil, errors.New("database: input/output error")
}

func (d *failingDesk) Release(*access.Reservation) (bool, error) { return false, nil }
func (d *failingDesk) Journal(passage.Passage) error {
	return errors.New("database: input/output error")
}

// TestDecisionFails: no decision keeps the barrier shut, tries once more
// at the read timeout, and does not spin.
func TestDecisionFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lines := gatetest.New(nil, gatetest.All...)
		lines.Init(gate.LineClosedSwitch, true)
		b, _ := gate.New(lines, gate.Options{Lane: "in-1", Log: zerolog.Nop()})
		desk := &failingDesk{}
		sink := lanetest.NewSink()
		l, err := lane.New(lane.Options{Site: "s1", Device: "box-1", Lane: "in-1", Direction: "entry", Barrier: b,
			Desk: desk, Sink: sink, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- l.Run(ctx) }()
		synctest.Wait()
		lines.Drive(gate.LineArming, true)
		synctest.Wait()
		l.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Early, Plate: carA, Conf: 0.97, TrackID: 1}})
		time.Sleep(time.Minute)
		synctest.Wait()
		if desk.calls != 2 {
			t.Errorf("%d decisions tried, want the read and one at the read timeout", desk.calls)
		}
		for _, s := range lines.Sets() {
			if s.Line == gate.LineOpen && s.Active {
				t.Error("opened without a decision")
			}
		}
		// The vehicle's passages say that nothing was decided, and why.
		ps := sink.Passages()
		if len(ps) != 2 {
			t.Fatalf("%d passages", len(ps))
		}
		for _, p := range ps {
			if p.Gate.Action != passage.Kept || p.Decision.Reason != lane.DecisionFailed || !strings.Contains(p.Decision.Note, "input/output error") || p.Validate() != nil {
				t.Errorf("passage %+v %+v", p.Gate, p.Decision)
			}
		}
		if ps[0].Read.Plate != "" || ps[1].Read.Plate != carA { // the read one waited for its evidence
			t.Errorf("reads %+v, %+v", ps[0].Read, ps[1].Read)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
