// Package gatetest is a hand-written fake of a barrier's lines for tests:
// it records every output set (with the time, from the clock it is given),
// lets the test drive the inputs (each change is delivered as an edge, as
// the GPIO driver does), and can be told to fail reads or writes of any
// line.
//
// It must not be imported outside tests, and it models no barrier: the
// arm does not move by itself. The simulated barrier (gate/sim) does.
package gatetest

import (
	"fmt"
	"sync"
	"time"

	"anprd/gate"
	"anprd/internal/clock"
)

// Set is one output write.
type Set struct {
	Line   gate.Line
	Active bool
	At     time.Time
}

func (s Set) String() string { return fmt.Sprintf("%s=%v", s.Line, s.Active) }

// Lines is the fake. Make it with New.
type Lines struct {
	clk   clock.Clock
	edges chan gate.Edge

	mu        sync.Mutex
	has       [gate.NumLines]bool
	val       [gate.NumLines]bool
	sets      []Set
	failSet   map[gate.Line]error
	failValue map[gate.Line]error
}

// New returns lines with the given lines wired (LineOpen and LineSafety
// are always wired), all inactive.
func New(clk clock.Clock, lines ...gate.Line) *Lines {
	if clk == nil {
		clk = clock.Real{}
	}
	f := &Lines{clk: clk, edges: make(chan gate.Edge, 64), failSet: map[gate.Line]error{}, failValue: map[gate.Line]error{}}
	f.has[gate.LineOpen], f.has[gate.LineSafety] = true, true
	for _, l := range lines {
		f.has[l] = true
	}
	return f
}

// All are every line, for New.
var All = []gate.Line{gate.LineOpen, gate.LineClose, gate.LineArming, gate.LineSafety,
	gate.LineOpenSwitch, gate.LineClosedSwitch, gate.LineFault, gate.LineButton}

// Has implements gate.Lines.
func (f *Lines) Has(l gate.Line) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return l >= 0 && l < gate.NumLines && f.has[l]
}

// Value implements gate.Lines.
func (f *Lines) Value(l gate.Line) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failValue[l]; err != nil {
		return false, err
	}
	if !f.has[l] {
		return false, fmt.Errorf("gatetest: line %s not wired", l)
	}
	return f.val[l], nil
}

// Set implements gate.Lines and records the write.
func (f *Lines) Set(l gate.Line, active bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !l.Output() || !f.has[l] {
		return fmt.Errorf("gatetest: %s is not a wired output", l)
	}
	if err := f.failSet[l]; err != nil {
		return err
	}
	f.val[l] = active
	f.sets = append(f.sets, Set{Line: l, Active: active, At: f.clk.Now()})
	return nil
}

// Edges implements gate.Lines.
func (f *Lines) Edges() <-chan gate.Edge { return f.edges }

// Init sets an input's (or output's) state without an edge: the state
// the barrier finds when it starts, or, while it runs, an edge the driver
// lost.
func (f *Lines) Init(l gate.Line, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.val[l] = active
}

// Drive changes an input and delivers the edge, as the hardware would.
// Driving an input to the state it has does nothing.
func (f *Lines) Drive(l gate.Line, active bool) {
	f.mu.Lock()
	if l.Output() || !f.has[l] {
		f.mu.Unlock()
		panic(fmt.Sprintf("gatetest: Drive(%s): not a wired input", l))
	}
	if f.val[l] == active {
		f.mu.Unlock()
		return
	}
	f.val[l] = active
	f.mu.Unlock()
	f.edges <- gate.Edge{Line: l, Active: active}
}

// Lose reports that the driver lost track of input l (events lost, or
// an error reading them), as gate/gpiocdev does: an edge with Err.
func (f *Lines) Lose(l gate.Line, err error) {
	f.edges <- gate.Edge{Line: l, Err: err}
}

// FailSet makes writes of l fail with err (nil: succeed again).
func (f *Lines) FailSet(l gate.Line, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failSet[l] = err
}

// FailValue makes reads of l fail with err (nil: succeed again).
func (f *Lines) FailValue(l gate.Line, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failValue[l] = err
}

// Sets returns the output writes so far.
func (f *Lines) Sets() []Set {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Set(nil), f.sets...)
}

// Output is an output's present state.
func (f *Lines) Output(l gate.Line) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.val[l]
}

// Reset forgets the writes recorded so far.
func (f *Lines) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = nil
}
