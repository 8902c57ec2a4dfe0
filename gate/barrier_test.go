package gate_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"anprd/gate"
	"anprd/gate/gatetest"
	"anprd/internal/clock"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/rs/zerolog"
)

// rig is one barrier on fake lines, running in a synctest bubble.
type rig struct {
	t      *testing.T
	lines  *gatetest.Lines
	b      *gate.Barrier
	reg    *prometheus.Registry
	tel    *telemetry
	cancel context.CancelFunc
	done   chan error
	evs    []gate.Event
	t0     time.Time
}

type telemetry struct {
	mu sync.Mutex
	tr []gate.Transition
}

func (t *telemetry) GateTransition(tr gate.Transition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tr = append(t.tr, tr)
}

// start runs a barrier on lines set up by init (the state the barrier
// finds at start-up). Call within synctest.Test.
func start(t *testing.T, o gate.Options, wired []gate.Line, init map[gate.Line]bool) *rig {
	t.Helper()
	r := &rig{t: t, lines: gatetest.New(clock.Real{}, wired...), tel: &telemetry{}, done: make(chan error, 1), t0: time.Now()}
	for l, v := range init {
		r.lines.Init(l, v)
	}
	o.Lane = "in-1"
	o.Log = zerolog.Nop()
	r.reg = prometheus.NewRegistry()
	o.Metrics, o.Telemetry = gate.NewMetrics(r.reg), r.tel
	b, err := gate.New(r.lines, o)
	if err != nil {
		t.Fatal(err)
	}
	r.b = b
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- b.Run(ctx) }()
	synctest.Wait()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// metric is the value of the series of family name with lane in-1 and
// the given label pairs.
func (r *rig) metric(name string, labels ...string) float64 {
	r.t.Helper()
	want := map[string]string{"lane": "in-1"}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	r.t.Fatalf("no series %s%v", name, want)
	return 0
}

func (r *rig) drive(l gate.Line, v bool) {
	r.lines.Drive(l, v)
	synctest.Wait()
}

func (r *rig) sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func (r *rig) open() (time.Time, error) {
	at, err := r.b.Open("test")
	synctest.Wait()
	return at, err
}

func (r *rig) state(want gate.State) {
	r.t.Helper()
	if got, fault := r.b.State(); got != want {
		r.t.Fatalf("at +%v: state %s (%s), want %s", time.Since(r.t0), got, fault, want)
	}
}

// events returns the events since the last call, leaving out transitions.
func (r *rig) events() []gate.Event {
	var out []gate.Event
	for {
		select {
		case e := <-r.b.Events():
			if e.Kind != gate.EventTransition {
				out = append(out, e)
			}
			r.evs = append(r.evs, e)
		default:
			return out
		}
	}
}

// stop cancels Run and waits for it: the shutdown.
func (r *rig) stop() {
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
	r.done <- nil // for Cleanup
}

// closeCommands counts the writes that close the barrier: a close pulse,
// or (held) releasing the open output.
func (r *rig) closeCommands(held bool) int {
	n := 0
	for _, s := range r.lines.Sets() {
		if (s.Line == gate.LineClose && s.Active) || (held && s.Line == gate.LineOpen && !s.Active) {
			n++
		}
	}
	return n
}

func (r *rig) openCommands() int {
	n := 0
	for _, s := range r.lines.Sets() {
		if s.Line == gate.LineOpen && s.Active {
			n++
		}
	}
	return n
}

// armUp and armDown play the barrier's arm on the position switches.
func (r *rig) armUp(travel time.Duration) {
	r.drive(gate.LineClosedSwitch, false)
	r.sleep(travel)
	r.drive(gate.LineOpenSwitch, true)
}

func (r *rig) armDown(travel time.Duration) {
	r.drive(gate.LineOpenSwitch, false)
	r.sleep(travel)
	r.drive(gate.LineClosedSwitch, true)
}

// vehicle drives a vehicle over the safety loop.
func (r *rig) vehicle(on time.Duration) {
	r.drive(gate.LineSafety, true)
	r.sleep(on)
	r.drive(gate.LineSafety, false)
	r.sleep(600 * time.Millisecond) // settle
}

func kinds(evs []gate.Event) []string {
	var s []string
	for _, e := range evs {
		k := e.Kind.String()
		if e.Kind == gate.EventPassed {
			k += map[bool]string{true: "/cmd", false: "/ext"}[e.Commanded]
			k += string(rune('0' + e.N))
		}
		if e.Kind == gate.EventArming || e.Kind == gate.EventAlarm {
			k += map[bool]string{true: "+", false: "-"}[e.Active]
		}
		s = append(s, k)
	}
	return s
}

var closedAtStart = map[gate.Line]bool{gate.LineClosedSwitch: true}

func TestBarrier(t *testing.T) {
	full := gatetest.All
	tests := []struct {
		name  string
		o     gate.Options
		wired []gate.Line
		init  map[gate.Line]bool
		run   func(r *rig)
	}{{
		name:  "normal opening: pulse, confirm, vehicle through, close",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.state(gate.Closed)
			at, err := r.open()
			if err != nil || !at.Equal(r.t0) {
				r.t.Fatalf("Open = %v, %v", at, err)
			}
			r.state(gate.Opening)
			sets := r.lines.Sets()
			// start-up ended both pulses; then the open pulse.
			want := []string{"open=false", "close=false", "open=true"}
			if got := strs(sets); !slices.Equal(got, want) {
				r.t.Fatalf("sets %v, want %v", got, want)
			}
			r.sleep(500 * time.Millisecond)
			if s := r.lines.Sets(); s[len(s)-1].String() != "open=false" || s[len(s)-1].At.Sub(s[len(s)-2].At) != 500*time.Millisecond {
				r.t.Fatalf("pulse not 500 ms: %v", s)
			}
			r.armUp(2 * time.Second)
			r.state(gate.Open)
			r.vehicle(1500 * time.Millisecond)
			r.state(gate.Closing)
			if n := r.closeCommands(false); n != 1 {
				r.t.Errorf("%d close commands", n)
			}
			r.armDown(2 * time.Second)
			r.state(gate.Closed)
			if got := kinds(r.events()); !slices.Equal(got, []string{"closed", "passed/cmd1", "closed"}) {
				r.t.Errorf("events %v", got)
			}
			if got := r.metric("anprd_gate_transitions_total", "from", "closing", "to", "closed"); got != 1 {
				r.t.Errorf("closing->closed counted %v", got)
			}
		},
	}, {
		name: "held output: held while open, released when the vehicle is through",
		o:    gate.Options{Held: true}, wired: []gate.Line{gate.LineOpenSwitch, gate.LineClosedSwitch}, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.sleep(5 * time.Second)
			if !r.lines.Output(gate.LineOpen) {
				r.t.Fatal("open output not held")
			}
			r.armUp(time.Second)
			r.vehicle(time.Second)
			if r.lines.Output(gate.LineOpen) {
				r.t.Fatal("open output still held after the vehicle went through")
			}
			r.armDown(time.Second)
			r.state(gate.Closed)
		},
	}, {
		name:  "no vehicle comes: closes after close_timeout",
		wired: full, init: closedAtStart, o: gate.Options{CloseTimeout: 20 * time.Second},
		run: func(r *rig) {
			r.open()
			r.armUp(2 * time.Second)
			r.sleep(17 * time.Second)
			r.state(gate.Open)
			r.sleep(time.Second)
			r.state(gate.Closing)
			if got := kinds(r.events()); slices.Contains(got, "passed/cmd1") {
				r.t.Errorf("a pass without a vehicle: %v", got)
			}
		},
	}, {
		name:  "safety loop unreadable while open: counts as occupied, fault, never closed; recovered when read again",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.armUp(2 * time.Second)
			r.lines.FailValue(gate.LineSafety, errors.New("read: no such device"))
			r.lines.Lose(gate.LineSafety, errors.New("gpio: events lost"))
			synctest.Wait()
			r.state(gate.Fault)
			r.sleep(5 * time.Minute) // far past close_timeout
			if n := r.closeCommands(false); n != 0 {
				r.t.Fatalf("closed %d times with the safety loop unreadable", n)
			}
			if _, err := r.open(); err == nil {
				r.t.Error("opened for a vehicle while in fault (failing secure)")
			}
			if got := r.metric("anprd_gate_input_errors_total", "line", "safety_loop"); got != 1 {
				r.t.Errorf("input errors counted %v, want 1 (the same failure read again is not counted)", got)
			}
			r.lines.FailValue(gate.LineSafety, nil)
			r.sleep(time.Second) // the next read of the inputs
			r.state(gate.Open)   // the open switch says so: no blind close
			r.sleep(30 * time.Second)
			r.state(gate.Closing) // close_timeout, with the loop read clear
		},
	}, {
		name:  "safety loop unreadable while closing: reopened",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.armUp(2 * time.Second)
			r.vehicle(time.Second)
			r.state(gate.Closing)
			opens := r.openCommands()
			r.lines.FailValue(gate.LineSafety, errors.New("read: input/output error"))
			r.sleep(time.Second) // found by the periodic read, no edge at all
			r.state(gate.Fault)
			if r.openCommands() != opens+1 {
				r.t.Errorf("a closing arm over an unreadable safety loop was not sent up again: %v", strs(r.lines.Sets()))
			}
		},
	}, {
		name:  "safety loop unreadable, failing open: opened and held",
		wired: full, init: closedAtStart, o: gate.Options{FailOpen: true},
		run: func(r *rig) {
			r.lines.FailValue(gate.LineSafety, errors.New("read: no such device"))
			r.sleep(time.Second)
			r.state(gate.Fault)
			if r.openCommands() != 1 || r.closeCommands(false) != 0 {
				r.t.Errorf("sets %v", strs(r.lines.Sets()))
			}
		},
	}, {
		name:  "a lost edge of the safety loop is made good by the periodic read",
		wired: full, init: closedAtStart, o: gate.Options{CloseTimeout: 5 * time.Second},
		run: func(r *rig) {
			r.open()
			r.armUp(2 * time.Second)
			r.lines.Init(gate.LineSafety, true) // the vehicle's edge never came
			r.sleep(time.Second)
			r.sleep(10 * time.Second) // past close_timeout: not closed on it
			r.state(gate.Open)
			if got := r.metric("anprd_gate_input_resyncs_total", "line", "safety_loop"); got != 1 {
				r.t.Errorf("resyncs %v", got)
			}
			r.drive(gate.LineSafety, false)
			r.sleep(time.Second)
			r.state(gate.Closing) // the vehicle is through
			if got := kinds(r.events()); !slices.Contains(got, "passed/cmd1") {
				r.t.Errorf("events %v", got)
			}
		},
	}, {
		name:  "the driver lost events but the line reads: taken from the line, no fault",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.lines.Init(gate.LineArming, true)
			r.lines.Lose(gate.LineArming, errors.New("gpio: events lost"))
			synctest.Wait()
			r.state(gate.Closed)
			if got := kinds(r.events()); !slices.Equal(got, []string{"closed", "arming+"}) {
				r.t.Errorf("events %v", got)
			}
		},
	}, {
		name:  "a position switch that cannot be read while running: fault until it reads",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.lines.FailValue(gate.LineClosedSwitch, errors.New("read: input/output error"))
			r.sleep(time.Second)
			r.state(gate.Fault)
			r.lines.FailValue(gate.LineClosedSwitch, nil)
			r.sleep(time.Second)
			r.state(gate.Closed)
		},
	}, {
		name:  "safety loop stuck occupied: stays up, alarm, closes once clear",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.armUp(2 * time.Second)
			r.drive(gate.LineSafety, true)
			r.sleep(10 * time.Minute)
			r.state(gate.Open)
			if n := r.closeCommands(false); n != 0 {
				r.t.Fatalf("%d close commands with the safety loop occupied", n)
			}
			if got := r.metric("anprd_gate_safety_loop_alarm"); got != 1 {
				r.t.Errorf("alarm gauge %v", got)
			}
			r.drive(gate.LineSafety, false)
			r.sleep(time.Second)
			r.state(gate.Closing)
			if got := kinds(r.events()); !slices.Equal(got, []string{"closed", "alarm+", "alarm-", "passed/cmd1"}) {
				r.t.Errorf("events %v", got)
			}
			if got := r.metric("anprd_gate_safety_loop_alarm"); got != 0 {
				r.t.Errorf("alarm gauge %v after clear", got)
			}
		},
	}, {
		name:  "vehicle onto the loop while closing: reopens, closes after it",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.armUp(2 * time.Second)
			r.vehicle(time.Second)
			r.state(gate.Closing)
			r.drive(gate.LineOpenSwitch, false) // the arm starts down
			r.sleep(300 * time.Millisecond)
			opens := r.openCommands()
			r.drive(gate.LineSafety, true) // a second vehicle under the arm
			r.state(gate.Opening)
			if r.openCommands() != opens+1 {
				r.t.Fatal("not reopened")
			}
			r.sleep(time.Second)
			r.drive(gate.LineOpenSwitch, true)
			r.state(gate.Open)
			r.drive(gate.LineSafety, false)
			r.sleep(time.Second)
			r.state(gate.Closing)
			if got := kinds(r.events()); !slices.Equal(got, []string{"closed", "passed/cmd1", "passed/cmd2"}) {
				r.t.Errorf("events %v", got)
			}
		},
	}, {
		name:  "two vehicles let in: stays open for the second",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.armUp(2 * time.Second)
			r.open()
			r.vehicle(time.Second)
			r.state(gate.Open)
			r.vehicle(time.Second)
			r.state(gate.Closing)
		},
	}, {
		name:  "open switch never confirms: fault, fails secure, refuses to open",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.drive(gate.LineClosedSwitch, false) // moves, but never reaches the top
			r.sleep(9 * time.Second)
			r.state(gate.Opening)
			r.sleep(time.Second)
			r.state(gate.Fault)
			if _, fault := r.b.State(); !strings.Contains(fault, "open switch did not confirm") {
				r.t.Errorf("fault %q", fault)
			}
			if n := r.closeCommands(false); n != 1 {
				r.t.Errorf("failing secure: %d close commands", n)
			}
			_, err := r.open()
			var fe *gate.FaultError
			if !errors.As(err, &fe) {
				r.t.Errorf("Open in fault = %v", err)
			}
			if got := r.metric("anprd_gate_faults_total", "kind", "open_not_confirmed"); got != 1 {
				r.t.Errorf("faults counted %v", got)
			}
			// The arm comes down after all: the fault clears.
			r.drive(gate.LineClosedSwitch, true)
			r.state(gate.Closed)
		},
	}, {
		name:  "closed switch never confirms: fault",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.armUp(time.Second)
			r.vehicle(time.Second)
			r.state(gate.Closing)
			r.sleep(10 * time.Second)
			r.state(gate.Fault)
			if got := r.metric("anprd_gate_faults_total", "kind", "close_not_confirmed"); got != 1 {
				r.t.Errorf("faults counted %v", got)
			}
		},
	}, {
		name: "controller fault, failing open: opens, lets vehicles through, recovers",
		o:    gate.Options{FailOpen: true}, wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.drive(gate.LineFault, true)
			r.state(gate.Fault)
			if r.openCommands() != 1 {
				r.t.Fatal("failing open did not open")
			}
			if _, err := r.open(); err != nil {
				r.t.Errorf("Open while failing open: %v", err)
			}
			r.drive(gate.LineFault, false)
			r.state(gate.Closed) // the closed switch still says so
		},
	}, {
		name:  "controller fault, failing secure, vehicle under the arm: waits for it before closing",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.armUp(2 * time.Second)
			r.drive(gate.LineSafety, true)
			r.drive(gate.LineFault, true)
			r.state(gate.Fault)
			if n := r.closeCommands(false); n != 0 {
				r.t.Fatalf("closed on a vehicle: %d", n)
			}
			r.drive(gate.LineSafety, false)
			r.sleep(time.Second)
			if n := r.closeCommands(false); n != 1 {
				r.t.Errorf("%d close commands once clear", n)
			}
		},
	}, {
		name:  "both position switches made: fault",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.drive(gate.LineOpenSwitch, true)
			r.state(gate.Fault)
			r.drive(gate.LineOpenSwitch, false)
			r.state(gate.Closed)
		},
	}, {
		name:  "open output fails: fault, Open says so",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.lines.FailSet(gate.LineOpen, errors.New("EIO"))
			if _, err := r.open(); err == nil || !strings.Contains(err.Error(), "EIO") {
				r.t.Errorf("Open = %v", err)
			}
			r.state(gate.Fault)
			r.lines.FailSet(gate.LineOpen, nil)
			if err := r.b.Reset("relay replaced"); err != nil {
				r.t.Fatal(err)
			}
			synctest.Wait()
			r.state(gate.Closed)
		},
	}, {
		name:  "restarted under an open barrier: recovered open, no blind close",
		wired: full, init: map[gate.Line]bool{gate.LineOpenSwitch: true},
		run: func(r *rig) {
			r.state(gate.Open)
			r.sleep(29 * time.Second)
			if n := r.closeCommands(false); n != 0 {
				r.t.Fatalf("%d close commands after restart", n)
			}
			r.sleep(time.Second)
			r.state(gate.Closing) // no vehicle came within close_timeout
		},
	}, {
		name: "restarted under an open barrier with a vehicle on the loop: closes after it",
		o:    gate.Options{Held: true}, wired: full, init: map[gate.Line]bool{gate.LineOpenSwitch: true, gate.LineSafety: true},
		run: func(r *rig) {
			r.state(gate.Open)
			if !r.lines.Output(gate.LineOpen) {
				r.t.Fatal("held open output not kept at start-up")
			}
			r.sleep(5 * time.Minute)
			if n := r.closeCommands(true); n != 0 {
				r.t.Fatalf("%d close commands with the vehicle there", n)
			}
			r.drive(gate.LineSafety, false)
			r.sleep(time.Second)
			r.state(gate.Closing)
			if got := kinds(r.events()); !slices.Contains(got, "passed/ext1") {
				r.t.Errorf("events %v", got)
			}
		},
	}, {
		name:  "power on, position unknown, failing secure: closes",
		wired: []gate.Line{gate.LineClose},
		run: func(r *rig) {
			if n := r.closeCommands(false); n != 1 {
				r.t.Fatalf("%d close commands", n)
			}
			r.state(gate.Closing)
			r.sleep(3 * time.Second)
			r.state(gate.Closed)
		},
	}, {
		name:  "power on, position unknown, failing secure, vehicle on the loop: waits",
		wired: []gate.Line{gate.LineClose}, init: map[gate.Line]bool{gate.LineSafety: true},
		run: func(r *rig) {
			r.state(gate.Open)
			r.sleep(2 * time.Minute)
			if n := r.closeCommands(false); n != 0 {
				r.t.Fatalf("%d close commands with a vehicle on the loop", n)
			}
			r.drive(gate.LineSafety, false)
			r.sleep(time.Second)
			r.state(gate.Closing)
		},
	}, {
		name: "power on, position unknown, failing open: opens",
		o:    gate.Options{FailOpen: true}, wired: []gate.Line{gate.LineClose},
		run: func(r *rig) {
			if r.openCommands() != 1 || r.closeCommands(false) != 0 {
				r.t.Fatalf("sets %v", r.lines.Sets())
			}
			r.state(gate.Opening)
			r.sleep(3 * time.Second)
			r.state(gate.Open)
		},
	}, {
		name:  "pulse mode without a close output: the controller closes, anprd follows",
		wired: []gate.Line{gate.LineOpenSwitch, gate.LineClosedSwitch}, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.armUp(2 * time.Second)
			r.vehicle(time.Second)
			r.state(gate.Closing)
			r.armDown(2 * time.Second)
			r.state(gate.Closed)
			// Opened by something else (a key switch): followed, and a
			// vehicle through is reported as not commanded.
			r.armUp(2 * time.Second)
			r.state(gate.Open)
			r.vehicle(time.Second)
			if got := kinds(r.events()); !slices.Equal(got, []string{"closed", "passed/cmd1", "closed", "passed/ext1"}) {
				r.t.Errorf("events %v", got)
			}
		},
	}, {
		name:  "loops and button are reported",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.drive(gate.LineArming, true)
			r.drive(gate.LineButton, true)
			r.drive(gate.LineButton, false)
			r.drive(gate.LineArming, false)
			if got := kinds(r.events()); !slices.Equal(got, []string{"closed", "arming+", "button", "arming-"}) {
				r.t.Errorf("events %v", got)
			}
			r.state(gate.Closed) // the button opens nothing by itself: the lane decides
		},
	}, {
		name:  "a trailer's gap is one vehicle",
		wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.open()
			r.armUp(time.Second)
			r.drive(gate.LineSafety, true)
			r.sleep(time.Second)
			r.drive(gate.LineSafety, false)
			r.sleep(200 * time.Millisecond)
			r.drive(gate.LineSafety, true)
			r.sleep(time.Second)
			r.drive(gate.LineSafety, false)
			r.sleep(time.Second)
			if got := kinds(r.events()); !slices.Equal(got, []string{"closed", "passed/cmd1"}) {
				r.t.Errorf("events %v", got)
			}
		},
	}, {
		name:  "stopping, failing secure: closes an open barrier",
		wired: full, init: map[gate.Line]bool{gate.LineOpenSwitch: true},
		run: func(r *rig) {
			r.stop()
			if n := r.closeCommands(false); n != 1 {
				r.t.Errorf("%d close commands", n)
			}
			if r.lines.Output(gate.LineClose) {
				r.t.Error("close relay left energised")
			}
			if _, err := r.b.Open("late"); !errors.Is(err, gate.ErrStopped) {
				r.t.Errorf("Open after stop = %v", err)
			}
		},
	}, {
		name: "stopping, failing secure, vehicle on the loop: left up",
		o:    gate.Options{Held: true}, wired: full, init: map[gate.Line]bool{gate.LineOpenSwitch: true, gate.LineSafety: true},
		run: func(r *rig) {
			r.stop()
			if n := r.closeCommands(true); n != 0 {
				r.t.Errorf("%d close commands on a vehicle", n)
			}
		},
	}, {
		name: "stopping, failing open: opens",
		o:    gate.Options{FailOpen: true}, wired: full, init: closedAtStart,
		run: func(r *rig) {
			r.stop()
			if r.openCommands() != 1 || r.lines.Output(gate.LineOpen) {
				r.t.Errorf("sets %v", r.lines.Sets())
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := start(t, tt.o, tt.wired, tt.init)
				tt.run(r)
				r.events()
				// Telemetry saw every transition the events did.
				var fromEvents []gate.Transition
				for _, e := range r.evs {
					if e.Kind == gate.EventTransition {
						fromEvents = append(fromEvents, e.Transition)
					}
				}
				r.tel.mu.Lock()
				defer r.tel.mu.Unlock()
				if len(r.tel.tr) == 0 || !slices.Equal(r.tel.tr, fromEvents) {
					t.Errorf("telemetry %v\nevents %v", r.tel.tr, fromEvents)
				}
			})
		})
	}
}

func strs(sets []gatetest.Set) []string {
	var s []string
	for _, x := range sets {
		s = append(s, x.String())
	}
	return s
}

func TestNewNeedsOpenAndSafety(t *testing.T) {
	f := gatetest.New(nil)
	if _, err := gate.New(f, gate.Options{}); err != nil {
		t.Fatal(err)
	}
	// A set of lines without the safety loop cannot be a barrier.
	if _, err := gate.New(noSafety{f}, gate.Options{Lane: "x"}); err == nil || !strings.Contains(err.Error(), "safety loop") {
		t.Errorf("New without a safety loop = %v", err)
	}
}

type noSafety struct{ *gatetest.Lines }

func (n noSafety) Has(l gate.Line) bool { return l != gate.LineSafety && n.Lines.Has(l) }

func TestMetricsLint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m := gate.NewMetrics(reg)
		f := gatetest.New(nil, gatetest.All...)
		f.Init(gate.LineClosedSwitch, true)
		f.FailSet(gate.LineClose, errors.New("EIO"))
		b, _ := gate.New(f, gate.Options{Lane: "in-1", Metrics: m, Log: zerolog.Nop()})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- b.Run(ctx) }()
		b.Open("x")
		time.Sleep(time.Minute)
		cancel()
		<-done
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(mfs) < 6 {
			t.Errorf("gathered %d families", len(mfs))
		}
		problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), "anprd_gate_") {
				t.Errorf("metric %s lacks the anprd_gate_ prefix", mf.GetName())
			}
		}
	})
}

func TestTransitionJSON(t *testing.T) {
	tr := gate.Transition{Lane: "in-1", From: gate.Closing, To: gate.Fault, Cause: "x", Fault: "y", At: time.Unix(0, 0).UTC()}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"lane":"in-1","from":"closing","to":"fault","cause":"x","fault":"y","at":"1970-01-01T00:00:00Z"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
}

// TestUnreadableSafetyLoopAtStart: a safety loop that cannot be read at
// start-up is a fault, and failing secure does not close the arm, since a
// vehicle may be under it.
func TestUnreadableSafetyLoopAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lines := gatetest.New(clock.Real{}, gatetest.All...)
		lines.Init(gate.LineOpenSwitch, true)
		lines.FailValue(gate.LineSafety, errors.New("line read failed"))
		b, err := gate.New(lines, gate.Options{Lane: "in-1", Log: zerolog.Nop(), Metrics: gate.NewMetrics(prometheus.NewRegistry())})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		if st, _ := b.State(); st != gate.Fault {
			t.Errorf("state %s, want fault", st)
		}
		for _, s := range lines.Sets() {
			if s.Line == gate.LineClose && s.Active {
				t.Errorf("the barrier was closed with its safety loop unreadable: %v", lines.Sets())
			}
		}
		cancel()
		<-done
	})
}

// TestInputsForTheStatusPage: the loops as the barrier last read them,
// and the safety loop's alarm, are readable from another goroutine.
func TestInputsForTheStatusPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := start(t, gate.Options{}, gatetest.All, closedAtStart)
		if in := r.b.Inputs(); in.Active[gate.LineArming] || in.Active[gate.LineSafety] || !in.Active[gate.LineClosedSwitch] || in.Alarm {
			t.Errorf("at start: %+v", in)
		}
		r.lines.Drive(gate.LineArming, true)
		synctest.Wait()
		if in := r.b.Inputs(); !in.Active[gate.LineArming] {
			t.Errorf("arming loop occupied not seen: %+v", in)
		}
		r.lines.Drive(gate.LineSafety, true)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if in := r.b.Inputs(); !in.Active[gate.LineSafety] || !in.Alarm {
			t.Errorf("a vehicle on the safety loop for 2 min: %+v", in)
		}
	})
}
