// Package sim is a simulated barrier with the same Lines as a real one:
// an arm that takes a realistic time (1.5-3 s) to rise and fall, position
// switches that follow it, a controller that obeys the open and close
// outputs (pulsed or held) and, without a close output, closes by itself
// once a vehicle has gone through, and the loops, button and fault input,
// which the demo, the tests and `anprctl bench lane` drive. It counts a
// hit whenever the arm comes down on an occupied safety loop, so a run
// can show that anprd never let it: the arm starting down, or reaching
// the bottom, while the loop is occupied. Serve offers its loops, button
// and fault input to another process over a small text protocol (the
// demo plays the cars from outside anprd); it cannot open the arm.
//
// The controller is deliberately dumb: it has no safety loop of its own,
// so it is anprd that must keep the arm off vehicles. It must not be used
// on a real lane, and it decides nothing: it only moves.
package sim

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"anprd/gate"
	"anprd/internal/clock"
)

// Options configure a simulated barrier.
type Options struct {
	// Lines it has besides the open output and the safety loop, which it
	// always has; nil means all.
	Lines []gate.Line
	// Held: the controller keeps the arm up while the open output is
	// active and lowers it when released. Otherwise the arm rises on a
	// pulse of the open output and falls on a pulse of the close output.
	Held bool
	// OpenTime and CloseTime are the arm's travel times; zero draws each
	// from 1.5-3 s with Seed.
	OpenTime, CloseTime time.Duration
	Seed                uint64
	// AutoClose: without a close output (and not Held), the controller
	// lowers the arm this long after a vehicle has left the safety loop;
	// default 1 s.
	AutoClose time.Duration
	Clock     clock.Clock // default clock.Real
}

// Barrier is the simulated barrier; it implements gate.Lines.
type Barrier struct {
	o     Options
	clk   clock.Clock
	edges chan gate.Edge

	mu       sync.Mutex
	has      [gate.NumLines]bool
	val      [gate.NumLines]bool
	pos      float64 // 0 down .. 1 up, at t0
	dir      int     // +1 rising, -1 falling, 0 still
	t0       time.Time
	arrive   clock.Timer
	auto     clock.Timer
	wasOn    bool // a vehicle was on the safety loop while the arm was up
	jammed   bool
	hits     int
	dropped  int
	changed  chan struct{} // closed and replaced on every change
	buttonTm clock.Timer
}

// New returns a simulated barrier, arm down.
func New(o Options) *Barrier {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	rng := rand.New(rand.NewPCG(o.Seed, 6))
	draw := func(d *time.Duration) {
		if *d <= 0 {
			*d = 1500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
		}
	}
	draw(&o.OpenTime)
	draw(&o.CloseTime)
	if o.AutoClose <= 0 {
		o.AutoClose = time.Second
	}
	s := &Barrier{o: o, clk: o.Clock, edges: make(chan gate.Edge, 1024), changed: make(chan struct{})}
	lines := o.Lines
	if lines == nil {
		lines = []gate.Line{gate.LineClose, gate.LineArming, gate.LineOpenSwitch, gate.LineClosedSwitch, gate.LineFault, gate.LineButton}
	}
	s.has[gate.LineOpen], s.has[gate.LineSafety] = true, true
	for _, l := range lines {
		s.has[l] = true
	}
	s.val[gate.LineClosedSwitch] = s.has[gate.LineClosedSwitch]
	return s
}

// Has implements gate.Lines.
func (s *Barrier) Has(l gate.Line) bool { return l >= 0 && l < gate.NumLines && s.has[l] }

// Value implements gate.Lines.
func (s *Barrier) Value(l gate.Line) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.val[l], nil
}

// Edges implements gate.Lines.
func (s *Barrier) Edges() <-chan gate.Edge { return s.edges }

// Set implements gate.Lines: the controller acts on its outputs.
func (s *Barrier) Set(l gate.Line, active bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.val[l]
	s.val[l] = active
	switch {
	case l == gate.LineOpen && s.o.Held && active:
		s.move(+1)
	case l == gate.LineOpen && s.o.Held && !active:
		s.move(-1)
	case (l == gate.LineOpen) && active && !was:
		s.move(+1)
	case l == gate.LineClose && active && !was:
		s.move(-1)
	}
	s.notify()
	return nil
}

// position is where the arm is now.
func (s *Barrier) position(now time.Time) float64 {
	if s.dir == 0 {
		return s.pos
	}
	travel := s.o.OpenTime
	if s.dir < 0 {
		travel = s.o.CloseTime
	}
	p := s.pos + float64(s.dir)*float64(now.Sub(s.t0))/float64(travel)
	return min(1, max(0, p))
}

// move starts the arm towards the top (+1) or bottom (-1).
func (s *Barrier) move(dir int) {
	if s.jammed {
		return
	}
	now := s.clk.Now()
	s.pos = s.position(now)
	if (dir > 0 && s.pos >= 1) || (dir < 0 && s.pos <= 0) {
		s.dir = 0
		return
	}
	if s.dir == dir {
		return
	}
	if dir < 0 && s.val[gate.LineSafety] {
		s.hits++ // the dumb controller lowers the arm onto a vehicle
	}
	s.dir, s.t0 = dir, now
	if s.auto != nil {
		s.auto.Stop()
	}
	// Leaving an end releases its switch.
	if dir > 0 && s.pos <= 0 {
		s.input(gate.LineClosedSwitch, false)
	}
	if dir < 0 && s.pos >= 1 {
		s.input(gate.LineOpenSwitch, false)
	}
	travel, left := s.o.OpenTime, 1-s.pos
	if dir < 0 {
		travel, left = s.o.CloseTime, s.pos
	}
	if s.arrive != nil {
		s.arrive.Stop()
	}
	d := time.Duration(left * float64(travel))
	s.arrive = s.clk.AfterFunc(d, func() { s.arrived(dir) })
}

func (s *Barrier) arrived(dir int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir != dir {
		return // reversed meanwhile
	}
	s.dir = 0
	if dir > 0 {
		s.pos = 1
		s.input(gate.LineOpenSwitch, true)
	} else {
		s.pos = 0
		if s.val[gate.LineSafety] {
			s.hits++
		}
		s.input(gate.LineClosedSwitch, true)
	}
	s.notify()
}

// input sets an input and delivers its edge; s.mu held.
func (s *Barrier) input(l gate.Line, active bool) {
	if !s.has[l] || s.val[l] == active {
		return
	}
	s.val[l] = active
	select {
	case s.edges <- gate.Edge{Line: l, Active: active}:
	default:
		s.dropped++ // nobody is reading: the barrier is not running
	}
}

func (s *Barrier) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// SetArming puts a vehicle on the arming loop, or takes it off.
func (s *Barrier) SetArming(on bool) { s.world(gate.LineArming, on) }

// SetFault sets the controller's fault output.
func (s *Barrier) SetFault(on bool) { s.world(gate.LineFault, on) }

// SetSafety puts a vehicle on the safety loop under the arm, or takes it
// off.
func (s *Barrier) SetSafety(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.input(gate.LineSafety, on)
	switch {
	case on && s.position(s.clk.Now()) > 0:
		s.wasOn = true
		if s.auto != nil {
			s.auto.Stop()
		}
	case !on && s.wasOn && !s.o.Held && !s.has[gate.LineClose]:
		// The controller's auto-close once the vehicle is through.
		s.wasOn = false
		s.auto = s.clk.AfterFunc(s.o.AutoClose, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.val[gate.LineSafety] {
				s.move(-1)
				s.notify()
			}
		})
	}
	s.notify()
}

// Press presses the manual button for 200 ms.
func (s *Barrier) Press() {
	s.world(gate.LineButton, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buttonTm = s.clk.AfterFunc(200*time.Millisecond, func() { s.world(gate.LineButton, false) })
}

// Jam stops the arm where it is and makes it ignore commands (a broken
// motor); Jam(false) mends it.
func (s *Barrier) Jam(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.pos, s.dir = s.position(s.clk.Now()), 0
		if s.arrive != nil {
			s.arrive.Stop()
		}
	}
	s.jammed = on
	s.notify()
}

// Raise puts the arm up at once, as anprd would find it after a restart.
func (s *Barrier) Raise() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pos, s.dir = 1, 0
	s.input(gate.LineClosedSwitch, false)
	s.input(gate.LineOpenSwitch, true)
	s.notify()
}

func (s *Barrier) world(l gate.Line, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.input(l, on)
	s.notify()
}

// Position is the arm's position now: 0 down, 1 up.
func (s *Barrier) Position() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.position(s.clk.Now())
}

// Hits counts the times the arm came down on an occupied safety loop.
func (s *Barrier) Hits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

// Output is the present state of an output (for tests).
func (s *Barrier) Output(l gate.Line) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.val[l]
}

// WaitUp waits until the arm is fully up, or ctx ends.
func (s *Barrier) WaitUp(ctx context.Context) error {
	for {
		s.mu.Lock()
		up := s.position(s.clk.Now()) >= 1
		ch := s.changed
		s.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Drive is a vehicle's way through the lane: it drives onto the arming
// loop, waits up to wait for the arm to be up and drives through, taking
// cross on the safety loop (leaving the arming loop halfway). It reports
// whether it went through; if the arm did not rise, it backs out.
func (s *Barrier) Drive(ctx context.Context, wait, cross time.Duration) (bool, error) {
	s.SetArming(true)
	wctx, cancel := context.WithTimeout(ctx, wait)
	err := s.WaitUp(wctx)
	cancel()
	if err != nil {
		s.SetArming(false)
		return false, ctx.Err()
	}
	s.SetSafety(true)
	if err := s.sleep(ctx, cross/2); err != nil {
		return false, err
	}
	s.SetArming(false)
	if err := s.sleep(ctx, cross-cross/2); err != nil {
		return false, err
	}
	s.SetSafety(false)
	return true, nil
}

func (s *Barrier) sleep(ctx context.Context, d time.Duration) error {
	tm := s.clk.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C():
		return nil
	}
}
