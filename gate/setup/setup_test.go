package setup_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"anprd/camera/track"
	"anprd/gate"
	"anprd/gate/gpiocdev"
	"anprd/gate/lane"
	"anprd/gate/lane/lanetest"
	"anprd/gate/setup"
	gatesim "anprd/gate/sim"
	"anprd/internal/access"
	"anprd/internal/config"
	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/permit/permittest"
	"anprd/internal/presence"

	"github.com/rs/zerolog"
)

const cfgText = `version: 1
site: {id: s1, device: box-1, timezone: UTC}
mqtt: {broker: tcp://127.0.0.1:1883}
access: {facility: f1}
lanes:
  - id: in-1
    direction: entry
    camera: {source: /dev/video0}
    gate:
      chip: gpiochip3
      open: 17
      close: {line: GATE_CLOSE, chip: gpiochip4}
      arming_loop: {line: 22, debounce: 50ms}
      safety_loop: {line: 27, active_low: true, debounce: 20ms}
      open_switch: 23
      closed_switch: 24
      open_mode: held
      pulse: 300ms
      fail_mode: open
      close_timeout: 20s
      confirm_timeout: 6s
      travel: 4s
      settle: 700ms
      safety_alarm_after: 90s
      read_timeout: 5s
      read_window: 2s
      manual_read_window: 1m
      release_after: 15m
      simulate: true
    evidence_wait: 12s
  - id: out-1
    direction: exit
    camera: {source: /dev/video1}
    gate: {chip: /dev/anprd-no-such-chip, open: 5, safety_loop: 6}
  - id: ff-1
    direction: entry
    mode: free-flow
    camera: {source: /dev/video2}
    evidence_wait: 3s
`

func load(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOptionsFromConfig(t *testing.T) {
	c := load(t)
	g := c.Lanes[0].Gate
	o := setup.GateOptions("in-1", g)
	if !o.Held || o.Pulse != 300*time.Millisecond || !o.FailOpen || o.CloseTimeout != 20*time.Second || o.ConfirmTimeout != 6*time.Second ||
		o.Travel != 4*time.Second || o.Settle != 700*time.Millisecond || o.AlarmAfter != 90*time.Second {
		t.Errorf("gate options %+v", o)
	}
	lo := setup.LaneOptions(c, &c.Lanes[0])
	if lo.Site != "s1" || lo.Device != "box-1" || lo.Lane != "in-1" || lo.Direction != "entry" || lo.EvidenceWait != 12*time.Second ||
		lo.ReadTimeout != 5*time.Second || lo.ReadMaxAge != 2*time.Second || lo.ManualReadAge != time.Minute || lo.VisitTimeout != 15*time.Minute {
		t.Errorf("lane options %+v", lo)
	}
	// A free-flow lane has no gate section: its evidence wait only.
	if lo := setup.LaneOptions(c, &c.Lanes[2]); lo.EvidenceWait != 3*time.Second || lo.ReadTimeout != 0 {
		t.Errorf("free-flow lane options %+v", lo)
	}
	specs := setup.Specs(g)
	want := map[gate.Line]gpiocdev.Spec{
		gate.LineOpen:         {Chip: "gpiochip3", Offset: 17},
		gate.LineClose:        {Chip: "gpiochip4", Offset: -1, Name: "GATE_CLOSE"},
		gate.LineArming:       {Chip: "gpiochip3", Offset: 22, Debounce: 50 * time.Millisecond},
		gate.LineSafety:       {Chip: "gpiochip3", Offset: 27, ActiveLow: true, Debounce: 20 * time.Millisecond},
		gate.LineOpenSwitch:   {Chip: "gpiochip3", Offset: 23},
		gate.LineClosedSwitch: {Chip: "gpiochip3", Offset: 24},
	}
	if len(specs) != len(want) {
		t.Errorf("specs %v", specs)
	}
	for l, w := range want {
		if specs[l] != w {
			t.Errorf("%s: %+v, want %+v", l, specs[l], w)
		}
	}
	so := setup.SimOptions("in-1", g, nil)
	if !so.Held || len(so.Lines) != 6 || so.Seed == setup.SimOptions("out-1", g, nil).Seed {
		t.Errorf("sim options %+v", so)
	}
}

// TestGPIOErrorNamesTheLane: a lane whose chip is missing fails to build,
// saying which lane and line.
func TestGPIOErrorNamesTheLane(t *testing.T) {
	c := load(t)
	_, err := setup.Lane(c, &c.Lanes[1], nil, setup.Deps{Desk: fakeDesk{}, Sink: lanetest.NewSink()})
	if err == nil || !strings.Contains(err.Error(), "lanes out-1: gpio: open (/dev/anprd-no-such-chip:5)") {
		t.Errorf("Lane = %v", err)
	}
}

type fakeDesk struct{}

func (fakeDesk) ReserveJournal(string, decide.Read, access.Draft) (*access.Reservation, error) {
	return nil, nil
}
func (fakeDesk) Release(*access.Reservation) (bool, error) { return false, nil }
func (fakeDesk) Journal(passage.Passage) error             { return nil }

// TestSimulatedLane builds the simulated lane from the config and drives
// a car through it, as the demo does.
func TestSimulatedLane(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := load(t)
		store, db := permittest.Store(t,
			permit.Change{Op: permit.Put, Facility: &permit.Facility{ID: "f1"}},
			permit.Change{Op: permit.Put, Product: &permit.Product{ID: "m", Facility: "f1"}},
			permit.Change{Op: permit.Put, Permit: &permit.Permit{ID: "P1", Tenant: "t", Product: "m", Status: permit.Active,
				ValidFrom: permit.Date(1999, 1, 1), Plates: []string{"AB12345"}}})
		pres, _ := presence.Open(db.DB)
		lanes, err := access.Lanes(c)
		if err != nil {
			t.Fatal(err)
		}
		desk, err := access.New(store, pres, lanes)
		if err != nil {
			t.Fatal(err)
		}
		sink := lanetest.NewSink()
		triggered := 0
		d := setup.Deps{Desk: desk, Sink: sink, IDs: new(passage.Generator), Log: zerolog.Nop()}
		b, err := setup.Lane(c, &c.Lanes[0], func() { triggered++ }, d)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if b.Sim == nil || b.Barrier == nil {
			t.Fatal("no simulated barrier")
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- b.Lane.Run(ctx) }()
		synctest.Wait()
		car := make(chan bool)
		go func() {
			through, _ := b.Sim.Drive(context.Background(), 10*time.Second, 1500*time.Millisecond)
			car <- through
		}()
		synctest.Wait()
		b.Lane.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Early, Plate: "AB12345", Conf: 0.97, TrackID: 1}})
		if !<-car {
			t.Fatal("the car did not get through")
		}
		ps, err := sink.Wait(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if p := ps[0]; p.Kind != passage.Vehicle || !p.Gate.Passed || p.Decision.Class != decide.Permit || p.Site != "s1" || p.Lane != "in-1" {
			t.Errorf("passage %+v", p)
		}
		if triggered != 1 {
			t.Errorf("camera triggered %d times", triggered)
		}
		time.Sleep(10 * time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if b.Sim.Hits() != 0 || b.Sim.Position() != 1 { // failing open: raised when anprd stops
			t.Errorf("hits %d, position %v", b.Sim.Hits(), b.Sim.Position())
		}

		ff, err := setup.Lane(c, &c.Lanes[2], nil, d)
		if err != nil || ff.Barrier != nil || ff.Sim != nil {
			t.Errorf("free-flow lane: %+v, %v", ff, err)
		}
	})
}

// TestSimControl: the simulated lanes' barriers are served on the state
// directory's socket (owner only), a socket left by a crashed anprd is
// replaced, and with no simulated lane nothing listens.
func TestSimControl(t *testing.T) {
	c := load(t)
	d := setup.Deps{Desk: fakeDesk{}, Sink: lanetest.NewSink(), IDs: new(passage.Generator), Log: zerolog.Nop()}
	sim, err := setup.Lane(c, &c.Lanes[0], nil, d)
	if err != nil {
		t.Fatal(err)
	}
	ff, err := setup.Lane(c, &c.Lanes[2], nil, d)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if run, err := setup.SimControl(dir, map[string]*setup.Built{"ff-1": ff}); run != nil || err != nil {
		t.Fatalf("no simulated lane: %v %v", run != nil, err)
	}
	stale, err := net.Listen("unix", setup.SimSocket(dir))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	run, err := setup.SimControl(dir, map[string]*setup.Built{"in-1": sim, "ff-1": ff})
	if err != nil || run == nil {
		t.Fatalf("SimControl: %v", err)
	}
	if fi, err := os.Stat(setup.SimSocket(dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v %v", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	cl, err := gatesim.Dial(ctx, setup.SimSocket(dir))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := cl.Do("in-1", "arming", "on"); err != nil || !st.Arming {
		t.Errorf("in-1: %+v %v", st, err)
	}
	if _, err := cl.Do("ff-1", "state"); err == nil {
		t.Error("a free-flow lane answered")
	}
	cl.Close()
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
