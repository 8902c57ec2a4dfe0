// Package gate drives one barrier: a state machine (closed, opening,
// open, closing, fault) over a small set of lines — the open and close
// relay outputs, the arming loop in front of the barrier, the safety loop
// under the arm, the two position switches, the controller's fault
// output and a manual button — that it reads and drives through the Lines
// interface. The GPIO driver (gate/gpiocdev), the simulated barrier
// (gate/sim) and the tests' fake (gate/gatetest) are Lines.
//
// The rules that keep people and cars safe live here and nowhere else:
// the barrier never closes while the safety loop is occupied, and reopens
// if a vehicle drives onto it while it closes; a position switch that does
// not confirm in time is a fault; on a fault, at start-up with the
// position unknown, and when anprd stops, the lane's fail mode decides
// whether the barrier is left open or closed; at start-up the state is
// recovered from the inputs, so an anprd restarted under an open barrier
// does not close it blindly.
//
// This package must not decide who may pass, keep passages or import
// hardware, camera or network code: it opens when told to, reports what
// the loops and switches saw (Events) and every transition (log,
// metrics, Telemetry), and reads time only from the clock it is given.
package gate

import (
	"fmt"
	"time"
)

// Line is one of a barrier's signals, by its role.
type Line int

const (
	LineOpen         Line = iota // output: the relay that opens the barrier
	LineClose                    // output: the relay that closes it, where the barrier has one
	LineArming                   // input: the loop in front of the barrier (a vehicle waits)
	LineSafety                   // input: the loop under the arm
	LineOpenSwitch               // input: the arm is fully up
	LineClosedSwitch             // input: the arm is fully down
	LineFault                    // input: the barrier controller reports a fault
	LineButton                   // input: the staff's manual open button
	NumLines
)

var lineNames = [NumLines]string{"open", "close", "arming_loop", "safety_loop", "open_switch", "closed_switch", "fault", "button"}

// String is the line's key in the config (open, safety_loop, ...).
func (l Line) String() string {
	if l < 0 || l >= NumLines {
		return fmt.Sprintf("line(%d)", int(l))
	}
	return lineNames[l]
}

// Output reports whether l is driven by anprd rather than read.
func (l Line) Output() bool { return l == LineOpen || l == LineClose }

// Edge is an input line that changed. Active is the new logical state:
// active-low wiring is already undone by the Lines.
type Edge struct {
	Line   Line
	Active bool
	// Err: the Lines lost track of the line (events were lost, or the
	// driver reports an error) and Active means nothing; the barrier
	// reads the line again, and an input it cannot read is a fault (a
	// safety loop that cannot be read counts as occupied).
	Err error
}

// Lines are a barrier's signals. Values are logical: true is active
// (a loop occupied, a switch made, a relay energised). Implementations
// must deliver every change of every input on Edges, in order.
type Lines interface {
	// Has reports whether the site wired line l; optional lines may be
	// missing, LineOpen and LineSafety never are.
	Has(l Line) bool
	// Value reads an input's (or an output's) present state.
	Value(l Line) (bool, error)
	// Set drives an output.
	Set(l Line, active bool) error
	// Edges delivers changes of the inputs. The barrier also reads every
	// input once a second (Options.Verify), so an edge the driver lost is
	// made good, and a line that stopped answering is a fault.
	Edges() <-chan Edge
}

// State is where the barrier is, as anprd knows it.
type State int

const (
	Unknown State = iota // before the start-up recovery
	Closed
	Opening
	Open
	Closing
	Fault
)

var stateNames = []string{"unknown", "closed", "opening", "open", "closing", "fault"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

// MarshalText gives the state's name, so telemetry and logs carry
// "open", not a number.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Transition is one change of state, for the log, the metrics and
// telemetry.
type Transition struct {
	Lane  string    `json:"lane"`
	From  State     `json:"from"`
	To    State     `json:"to"`
	Cause string    `json:"cause"`
	Fault string    `json:"fault,omitempty"` // set when To is Fault
	At    time.Time `json:"at"`
}

// Telemetry receives every transition (issue 5 publishes them). It is
// called from the barrier's goroutine and must not block.
type Telemetry interface {
	GateTransition(Transition)
}

// EventKind says what an Event reports.
type EventKind int

const (
	EventArming     EventKind = iota // the arming loop changed (Active)
	EventPassed                      // a vehicle went through: the safety loop was occupied, then clear
	EventClosed                      // the barrier is down: the opening is over
	EventButton                      // the manual button was pressed
	EventTransition                  // the state changed (Transition)
	EventAlarm                       // the safety loop has been occupied too long (Active), or no longer is
)

var eventNames = []string{"arming", "passed", "closed", "button", "transition", "alarm"}

func (k EventKind) String() string {
	if k < 0 || int(k) >= len(eventNames) {
		return fmt.Sprintf("event(%d)", int(k))
	}
	return eventNames[k]
}

// Event is what the barrier tells the lane.
type Event struct {
	Kind   EventKind
	At     time.Time
	Active bool // EventArming, EventAlarm
	// N is the vehicle's number within the opening (EventPassed): 1 for
	// the first through, 2 for a second on the same opening, ...
	N int
	// Commanded: the opening was commanded by Open (EventPassed); false
	// when the barrier was opened by something else (the controller, a
	// key switch) or found open at start-up.
	Commanded  bool
	Transition Transition // EventTransition
}

// FaultError is returned by Open when the barrier is in fault and the
// lane fails secure: the barrier was not opened.
type FaultError struct{ Cause string }

func (e *FaultError) Error() string { return "barrier in fault: " + e.Cause }
