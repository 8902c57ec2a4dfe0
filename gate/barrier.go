package gate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"anprd/internal/clock"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Options configure a barrier. Zero durations take the defaults.
type Options struct {
	Lane string
	// Held: the open output is held active for as long as the barrier is
	// to stay open and released to close it (a close output, if wired, is
	// pulsed as well). Otherwise the open output is pulsed to open and the
	// close output pulsed to close; a barrier without a close output then
	// closes by itself (its controller's auto-close), and anprd follows it
	// by the position switches.
	Held bool
	// Pulse is the length of an output pulse; default 500 ms.
	Pulse time.Duration
	// FailOpen: on a fault, at start-up with the position unknown and when
	// anprd stops, the barrier is opened and left open. Otherwise (fail
	// secure) it is closed, never on a vehicle, and opened for nobody
	// until the fault clears.
	FailOpen bool
	// CloseTimeout: an opening no vehicle has gone through closes after
	// this long; default 30 s.
	CloseTimeout time.Duration
	// ConfirmTimeout: a position switch that has not confirmed a commanded
	// movement in this time is a fault; default 10 s.
	ConfirmTimeout time.Duration
	// Travel is how long the arm is assumed to take where no position
	// switch tells; default 3 s.
	Travel time.Duration
	// Settle: the safety loop must stay clear this long before the vehicle
	// counts as through (a trailer's gap is the same vehicle); default
	// 500 ms.
	Settle time.Duration
	// AlarmAfter: a safety loop occupied this long raises an alarm (the
	// barrier stays up regardless); default 60 s.
	AlarmAfter time.Duration
	// ShutdownWait bounds how long a stopping fail-secure barrier waits for
	// the safety loop to clear before it closes; default 2 s. If it does
	// not clear, the barrier is left open.
	ShutdownWait time.Duration
	// Verify: every input is read again this often, so that an edge the
	// GPIO driver lost is made good and a line that stops answering is a
	// fault; default 1 s.
	Verify time.Duration

	Clock     clock.Clock // default clock.Real
	Log       zerolog.Logger
	Metrics   *Metrics  // default: metrics registered nowhere
	Telemetry Telemetry // optional
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Pulse, 500*time.Millisecond)
	def(&o.CloseTimeout, 30*time.Second)
	def(&o.ConfirmTimeout, 10*time.Second)
	def(&o.Travel, 3*time.Second)
	def(&o.Settle, 500*time.Millisecond)
	def(&o.AlarmAfter, time.Minute)
	def(&o.ShutdownWait, 2*time.Second)
	def(&o.Verify, time.Second)
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(prometheus.NewRegistry())
	}
}

// ErrStopped is returned by Open once Run has returned.
var ErrStopped = errors.New("gate: barrier stopped")

// timers of the state machine; one clock timer serves the earliest.
type timerID int

const (
	tPulse   timerID = iota // end of an output pulse
	tSettle                 // the safety loop has stayed clear: a vehicle is through
	tTravel                 // the arm is assumed at its end (no switch to tell)
	tConfirm                // a position switch should have confirmed by now
	tClose                  // no vehicle came: close
	tAlarm                  // the safety loop has been occupied too long
	tVerify                 // read every input again
	numTimers
)

// Barrier is one lane's barrier. Run owns the lines; Open and Reset ask
// Run's goroutine to act and wait for it.
type Barrier struct {
	o       Options
	lines   Lines
	edges   <-chan Edge
	clk     clock.Clock
	log     zerolog.Logger
	m       *laneMetrics
	reqs    chan request
	events  chan Event
	done    chan struct{}
	running atomic.Bool

	mu     sync.Mutex
	state  State
	fault  string
	inputs Inputs // as of the last turn of Run's loop

	// Owned by Run's goroutine.
	st        State
	faultKind string // fault_input, open_not_confirmed, close_not_confirmed, switches, output, input
	cause     string // why the barrier is in fault
	failing   bool   // applying the fail mode: further output errors are only logged
	in        [NumLines]bool
	pulsing   Line      // the output being pulsed, or -1
	allowed   int       // vehicles let in by Open and not yet through
	passes    int       // vehicles through in this opening
	commanded bool      // this opening was commanded by Open
	onLoop    bool      // a vehicle is or was on the safety loop during the opening and has not been counted
	clearedAt time.Time // when the safety loop last cleared
	alarm     bool
	due       [numTimers]time.Time
}

type reqKind int

const (
	reqOpen reqKind = iota
	reqReset
)

type request struct {
	kind  reqKind
	cause string
	reply chan reply
}

type reply struct {
	at  time.Time
	err error
}

// eventBuffer is far more than a lane can fall behind by: events come at
// the pace of cars.
const eventBuffer = 1024

// New returns a barrier on lines; Run starts it. The lines must include
// the open output and the safety loop.
func New(lines Lines, o Options) (*Barrier, error) {
	if !lines.Has(LineOpen) {
		return nil, fmt.Errorf("gate: lane %s: no open output", o.Lane)
	}
	if !lines.Has(LineSafety) {
		return nil, fmt.Errorf("gate: lane %s: no safety loop; the barrier must never close on a vehicle", o.Lane)
	}
	o.defaults()
	b := &Barrier{
		o: o, lines: lines, edges: lines.Edges(), clk: o.Clock, log: o.Log, m: o.Metrics.forLane(o.Lane),
		reqs: make(chan request), events: make(chan Event, eventBuffer), done: make(chan struct{}),
		pulsing: -1,
	}
	return b, nil
}

// Events are what the loops, switches and button did, the transitions
// and the alarms, for the lane.
func (b *Barrier) Events() <-chan Event { return b.events }

// Has reports whether the barrier has line l (the lane asks for the
// arming loop).
func (b *Barrier) Has(l Line) bool { return b.lines.Has(l) }

// State is the barrier's present state, and the fault's cause in Fault.
func (b *Barrier) State() (State, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.fault
}

// Inputs are the input lines as the barrier last read them (true: a
// loop occupied, a switch made) and whether the safety loop's alarm is
// up, for the status page.
type Inputs struct {
	Active [NumLines]bool
	Alarm  bool
}

// Inputs returns the inputs as of the barrier's last event.
func (b *Barrier) Inputs() Inputs {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inputs
}

// Open opens the barrier for one vehicle (or a manual opening) and
// returns when the command went out. In fault it fails with a
// *FaultError, unless the lane fails open: the barrier is held open then.
func (b *Barrier) Open(cause string) (time.Time, error) {
	return b.request(reqOpen, cause)
}

// Reset forgets a fault and recovers the state from the inputs, as at
// start-up (a technician's command once the barrier is mended).
func (b *Barrier) Reset(cause string) error {
	_, err := b.request(reqReset, cause)
	return err
}

func (b *Barrier) request(k reqKind, cause string) (time.Time, error) {
	r := request{kind: k, cause: cause, reply: make(chan reply, 1)}
	select {
	case b.reqs <- r:
	case <-b.done:
		return time.Time{}, ErrStopped
	}
	rep := <-r.reply
	return rep.at, rep.err
}

// Run recovers the barrier's state from its inputs, then drives it until
// ctx ends, when it leaves the barrier as the fail mode says (see
// shutdown). It returns an error only if the lines stop delivering.
func (b *Barrier) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("gate: Run called twice")
	}
	defer close(b.done)
	b.recover("start-up")
	tm := b.clk.NewTimer(time.Hour)
	defer tm.Stop()
	for {
		b.mu.Lock()
		b.inputs = Inputs{Active: b.in, Alarm: b.alarm}
		b.mu.Unlock()
		b.arm(tm)
		select {
		case <-ctx.Done():
			b.shutdown()
			return nil
		case e, ok := <-b.edges:
			if !ok {
				b.log.Error().Msg("barrier lines closed")
				return fmt.Errorf("gate: lane %s: lines closed", b.o.Lane)
			}
			b.onEdge(e)
		case r := <-b.reqs:
			r.reply <- b.handle(r)
		case <-tm.C():
			b.onTimers()
		}
	}
}

// arm sets tm to the earliest due timer.
func (b *Barrier) arm(tm clock.Timer) {
	var next time.Time
	for _, d := range b.due {
		if !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	tm.Stop()
	if !next.IsZero() {
		tm.Reset(max(0, next.Sub(b.clk.Now())))
	}
}

func (b *Barrier) onTimers() {
	now := b.clk.Now()
	for id := range numTimers {
		if d := b.due[id]; !d.IsZero() && !now.Before(d) {
			b.due[id] = time.Time{}
			b.fire(id, now)
		}
	}
}

func (b *Barrier) fire(id timerID, now time.Time) {
	switch id {
	case tPulse:
		b.endPulse()
	case tSettle:
		b.vehiclePassed(now)
	case tTravel:
		switch b.st {
		case Opening:
			b.setState(Open, "assumed open (no open switch)")
		case Closing:
			b.setState(Closed, "assumed closed (no closed switch)")
		}
	case tConfirm:
		switch b.st {
		case Opening:
			b.enterFault("open_not_confirmed", fmt.Sprintf("the open switch did not confirm within %v", b.o.ConfirmTimeout))
		case Closing:
			b.enterFault("close_not_confirmed", fmt.Sprintf("the closed switch did not confirm within %v", b.o.ConfirmTimeout))
		}
	case tClose:
		if (b.st == Open || b.st == Opening) && !b.in[LineSafety] {
			b.allowed = 0
			b.driveClose(fmt.Sprintf("no vehicle within %v", b.o.CloseTimeout))
		}
	case tVerify:
		b.verify()
	case tAlarm:
		if b.in[LineSafety] && !b.alarm {
			b.alarm = true
			b.m.alarm.Set(1)
			b.log.Error().Dur("occupied_for", b.o.AlarmAfter).Str("state", b.st.String()).
				Msg("safety loop occupied too long; barrier kept up")
			b.emit(Event{Kind: EventAlarm, At: now, Active: true})
		}
	}
}

func (b *Barrier) handle(r request) reply {
	switch r.kind {
	case reqReset:
		b.log.Info().Str("cause", r.cause).Msg("barrier reset")
		b.recover("reset: " + r.cause)
		return reply{at: b.clk.Now()}
	}
	if b.st == Fault {
		if !b.o.FailOpen {
			return reply{err: &FaultError{Cause: b.cause}}
		}
		// Failing open: the barrier is held open already; drive it again
		// for a controller that closes by itself.
		if err := b.outputsOpen(); err != nil {
			b.log.Error().Err(err).Msg("barrier in fault, failing open: open output")
		}
		b.allowed++
		b.commanded = true
		b.m.opens.Inc()
		return reply{at: b.clk.Now()}
	}
	if err := b.driveOpen(r.cause); err != nil {
		return reply{err: err}
	}
	b.allowed++
	b.commanded = true
	b.m.opens.Inc()
	return reply{at: b.clk.Now()}
}

func (b *Barrier) onEdge(e Edge) {
	if e.Line < 0 || e.Line >= NumLines || e.Line.Output() {
		b.log.Warn().Int("line", int(e.Line)).Msg("edge on a line that is not an input; ignored")
		return
	}
	if e.Err != nil {
		b.log.Warn().Err(e.Err).Str("line", e.Line.String()).Msg("the GPIO driver lost track of an input; reading it again")
		v, err := b.lines.Value(e.Line)
		if err != nil {
			b.inputFailed(e.Line, err)
			return
		}
		if v != b.in[e.Line] {
			b.m.inputResync(e.Line)
		}
		e = Edge{Line: e.Line, Active: v}
	}
	if b.in[e.Line] == e.Active {
		return // no change (a repeated edge)
	}
	b.in[e.Line] = e.Active
	now := b.clk.Now()
	b.log.Debug().Str("line", e.Line.String()).Bool("active", e.Active).Str("state", b.st.String()).Msg("input")
	switch e.Line {
	case LineArming:
		b.emit(Event{Kind: EventArming, At: now, Active: e.Active})
	case LineButton:
		if e.Active {
			b.emit(Event{Kind: EventButton, At: now})
		}
	case LineFault:
		switch {
		case e.Active:
			b.enterFault("fault_input", "the barrier controller reports a fault")
		case b.st == Fault:
			b.recover("fault input cleared")
		}
	case LineSafety:
		b.onSafety(e.Active, now)
	case LineOpenSwitch, LineClosedSwitch:
		b.onSwitch(now)
	}
}

// verify reads every input again, once per Verify: an edge the driver
// lost is made good (the level on the line wins), and an input that can
// no longer be read is a fault. Edges already delivered are taken first,
// so that a level read now is not older than them. Once every input reads
// again, a fault they caused is recovered from.
func (b *Barrier) verify() {
	b.due[tVerify] = b.clk.Now().Add(b.o.Verify)
drain:
	for {
		select {
		case e, ok := <-b.edges:
			if !ok {
				return // Run sees the closed channel
			}
			b.onEdge(e)
		default:
			break drain
		}
	}
	for l := range NumLines {
		if l.Output() || !b.lines.Has(l) {
			continue
		}
		v, err := b.lines.Value(l)
		if err != nil {
			b.inputFailed(l, err)
			return
		}
		if v != b.in[l] {
			b.m.inputResync(l)
			b.log.Warn().Str("line", l.String()).Bool("active", v).Msg("input level differs from its last edge (an edge was lost); taken from the line")
			b.onEdge(Edge{Line: l, Active: v})
		}
	}
	if b.st == Fault && b.faultKind == "input" {
		b.recover("inputs read again")
	}
}

// inputFailed: input l cannot be read. A safety loop that cannot be read
// may have a vehicle on it, so it counts as occupied (a closing arm goes
// back up, nothing closes on it); then the barrier goes to fault, and
// its fail mode applies. Reading it again once a Verify later recovers.
func (b *Barrier) inputFailed(l Line, err error) {
	cause := fmt.Sprintf("%s input: %v", l, err)
	if b.st == Fault && b.faultKind == "input" && b.cause == cause {
		return // the same failure, read again
	}
	b.m.inputError(l)
	if l == LineSafety && !b.in[LineSafety] {
		b.onEdge(Edge{Line: LineSafety, Active: true})
	}
	b.enterFault("input", cause)
}

func (b *Barrier) onSafety(active bool, now time.Time) {
	if active {
		b.due[tSettle] = time.Time{} // cleared but not settled: the same vehicle
		b.due[tClose] = time.Time{}  // a vehicle is here: no timeout
		b.due[tAlarm] = now.Add(b.o.AlarmAfter)
		if b.st != Closed {
			b.onLoop = true
		}
		switch b.st {
		case Closing:
			b.log.Warn().Msg("vehicle on the safety loop while the barrier closes: reopening")
			b.driveOpen("safety loop occupied while closing")
		case Fault:
			// Safety beats failing secure: an arm that may be coming down
			// goes back up (unless the closed switch says it is down).
			if !b.o.FailOpen && !(b.lines.Has(LineClosedSwitch) && b.in[LineClosedSwitch]) {
				if err := b.outputsOpen(); err != nil {
					b.log.Error().Err(err).Msg("vehicle on the safety loop in fault: open output")
				}
			}
		}
		return
	}
	b.due[tAlarm] = time.Time{}
	if b.alarm {
		b.alarm = false
		b.m.alarm.Set(0)
		b.log.Info().Msg("safety loop clear again")
		b.emit(Event{Kind: EventAlarm, At: now, Active: false})
	}
	if b.onLoop {
		b.clearedAt = now
		b.due[tSettle] = now.Add(b.o.Settle)
	}
}

// vehiclePassed: the safety loop went clear and stayed clear.
func (b *Barrier) vehiclePassed(now time.Time) {
	b.onLoop = false
	b.passes++
	if b.allowed > 0 {
		b.allowed--
	}
	b.m.passed.Inc()
	b.log.Debug().Int("n", b.passes).Int("allowed", b.allowed).Bool("commanded", b.commanded).Msg("vehicle through")
	b.emit(Event{Kind: EventPassed, At: b.clearedAt, N: b.passes, Commanded: b.commanded})
	switch b.st {
	case Fault:
		if !b.o.FailOpen {
			b.secure()
		}
	case Open, Opening:
		if b.allowed == 0 {
			b.driveClose("vehicle through")
		} else {
			b.due[tClose] = now.Add(b.o.CloseTimeout)
		}
	}
}

func (b *Barrier) onSwitch(now time.Time) {
	o, c := b.in[LineOpenSwitch], b.in[LineClosedSwitch]
	hasOpen, hasClosed := b.lines.Has(LineOpenSwitch), b.lines.Has(LineClosedSwitch)
	if o && c {
		b.enterFault("switches", "both position switches made")
		return
	}
	switch b.st {
	case Opening:
		if o {
			b.due[tConfirm] = time.Time{}
			b.setState(Open, "open switch made")
		}
	case Closing:
		switch {
		case c:
			b.due[tConfirm] = time.Time{}
			b.setState(Closed, "closed switch made")
		case o:
			b.due[tConfirm] = time.Time{}
			b.setState(Open, "open switch made while closing: the controller reversed")
			b.closeLater(now)
		}
	case Open:
		switch {
		case c:
			b.setState(Closed, "closed switch made: closed by the controller")
		case !o && hasOpen:
			b.setState(Closing, "open switch released: the controller is closing")
			b.awaitClosed(now)
			if b.in[LineSafety] {
				b.driveOpen("safety loop occupied while the controller closes")
			}
		}
	case Closed:
		switch {
		case o:
			b.setState(Open, "open switch made: opened by the controller")
			b.closeLater(now)
		case !c && hasClosed:
			b.setState(Opening, "closed switch released: opened by the controller")
			if !hasOpen {
				b.due[tTravel] = now.Add(b.o.Travel)
			}
			b.closeLater(now)
		}
	case Fault:
		if !(b.lines.Has(LineFault) && b.in[LineFault]) && o != c {
			b.recover("position switch after " + b.faultKind)
		}
	}
}

// closeLater starts the no-vehicle timeout of an opening.
func (b *Barrier) closeLater(now time.Time) {
	if b.in[LineSafety] {
		b.onLoop = true
	} else {
		b.due[tClose] = now.Add(b.o.CloseTimeout)
	}
}

// awaitClosed waits for the closed switch, or assumes the travel time.
func (b *Barrier) awaitClosed(now time.Time) {
	if b.lines.Has(LineClosedSwitch) {
		b.due[tConfirm] = now.Add(b.o.ConfirmTimeout)
	} else {
		b.due[tTravel] = now.Add(b.o.Travel)
	}
}

// driveOpen commands the barrier open and follows it to Open.
func (b *Barrier) driveOpen(cause string) error {
	if err := b.outputsOpen(); err != nil {
		b.enterFault("output", err.Error())
		return err
	}
	now := b.clk.Now()
	b.closeLater(now)
	if b.st == Open || b.st == Opening {
		return nil
	}
	b.due[tConfirm], b.due[tTravel] = time.Time{}, time.Time{}
	b.setState(Opening, cause)
	switch {
	case !b.lines.Has(LineOpenSwitch):
		b.due[tTravel] = now.Add(b.o.Travel)
	case b.in[LineOpenSwitch]:
		b.setState(Open, "open switch made") // reopened before the arm left the top
	default:
		b.due[tConfirm] = now.Add(b.o.ConfirmTimeout)
	}
	return nil
}

// driveClose commands the barrier closed, unless a vehicle is on the
// safety loop, and follows it to Closed.
func (b *Barrier) driveClose(cause string) {
	if b.in[LineSafety] {
		return
	}
	if err := b.outputsClose(); err != nil {
		b.enterFault("output", err.Error())
		return
	}
	b.due[tClose], b.due[tConfirm], b.due[tTravel] = time.Time{}, time.Time{}, time.Time{}
	if b.st == Closed {
		return
	}
	b.setState(Closing, cause)
	if b.lines.Has(LineClosedSwitch) && b.in[LineClosedSwitch] {
		b.setState(Closed, "closed switch made")
		return
	}
	b.awaitClosed(b.clk.Now())
}

// secure closes a faulted barrier that fails secure, once no vehicle is
// on the safety loop.
func (b *Barrier) secure() {
	if b.in[LineSafety] {
		return
	}
	if err := b.outputsClose(); err != nil {
		b.log.Error().Err(err).Msg("barrier in fault, failing secure: close output")
	}
}

// outputsOpen drives the outputs that open the barrier.
func (b *Barrier) outputsOpen() error {
	if b.o.Held {
		if b.pulsing == LineClose {
			b.endPulse()
		}
		return b.set(LineOpen, true)
	}
	return b.pulse(LineOpen)
}

// errOccupied guards the one place a close is driven.
var errOccupied = errors.New("safety loop occupied")

// outputsClose drives the outputs that close the barrier. It is the only
// place that does, and refuses while the safety loop is occupied.
func (b *Barrier) outputsClose() error {
	if b.in[LineSafety] {
		return errOccupied
	}
	if b.o.Held {
		if err := b.set(LineOpen, false); err != nil {
			return err
		}
	} else if b.pulsing == LineOpen {
		b.endPulse()
	}
	if b.lines.Has(LineClose) {
		return b.pulse(LineClose)
	}
	return nil
}

func (b *Barrier) pulse(l Line) error {
	if b.pulsing >= 0 && b.pulsing != l {
		b.endPulse()
	}
	if err := b.set(l, true); err != nil {
		return err
	}
	b.pulsing = l
	b.due[tPulse] = b.clk.Now().Add(b.o.Pulse)
	return nil
}

func (b *Barrier) endPulse() {
	if b.pulsing < 0 {
		return
	}
	l := b.pulsing
	b.pulsing, b.due[tPulse] = -1, time.Time{}
	if err := b.set(l, false); err != nil {
		// A relay left energised holds the barrier open (or shut).
		b.enterFault("output", err.Error())
	}
}

func (b *Barrier) set(l Line, v bool) error {
	if !b.lines.Has(l) {
		return nil
	}
	if err := b.lines.Set(l, v); err != nil {
		b.m.outputError(l)
		return fmt.Errorf("%s output: %w", l, err)
	}
	return nil
}

// enterFault goes to Fault and applies the fail mode.
func (b *Barrier) enterFault(kind, cause string) {
	if b.failing {
		b.log.Error().Str("kind", kind).Str("cause", cause).Msg("barrier: further failure while applying the fail mode")
		return
	}
	b.m.fault(kind)
	b.faultKind, b.cause = kind, cause
	b.due[tConfirm], b.due[tTravel], b.due[tClose] = time.Time{}, time.Time{}, time.Time{}
	if b.st == Fault {
		b.log.Error().Str("kind", kind).Str("cause", cause).Msg("barrier: further fault")
		b.publish()
	} else {
		b.setState(Fault, cause)
	}
	b.failing = true
	defer func() { b.failing = false }()
	if b.o.FailOpen {
		if err := b.outputsOpen(); err != nil {
			b.log.Error().Err(err).Msg("barrier in fault, failing open: open output")
		}
		return
	}
	b.secure()
}

// recover reads the inputs and takes the state they show: at start-up,
// after a fault clears, on Reset. An open barrier stays open until a
// vehicle has gone through or the close timeout passes; a barrier whose
// position cannot be told follows the fail mode.
func (b *Barrier) recover(cause string) {
	now := b.clk.Now()
	b.due[tVerify] = now.Add(b.o.Verify) // also retries an input that cannot be read
	startup := b.st == Unknown
	for l := range NumLines {
		if l.Output() || !b.lines.Has(l) {
			continue
		}
		v, err := b.lines.Value(l)
		if err != nil {
			// A safety loop that cannot be read counts as occupied:
			// failing secure must not close the arm on it.
			b.inputFailed(l, err)
			return
		}
		b.in[l] = v
	}
	if startup && !b.o.Held {
		// A pulse cut short by a restart would hold the relay: end it.
		for _, l := range []Line{LineOpen, LineClose} {
			if err := b.set(l, false); err != nil {
				b.enterFault("output", err.Error())
				return
			}
		}
	}
	pulse := b.due[tPulse]
	b.due = [numTimers]time.Time{}
	b.due[tPulse] = pulse
	b.due[tVerify] = now.Add(b.o.Verify)
	b.faultKind, b.cause = "", ""
	b.allowed, b.passes, b.commanded = 0, 0, false
	b.onLoop = b.in[LineSafety]
	if b.in[LineSafety] {
		b.due[tAlarm] = now.Add(b.o.AlarmAfter)
	} else if b.alarm {
		b.alarm = false
		b.m.alarm.Set(0)
		b.emit(Event{Kind: EventAlarm, At: now, Active: false})
	}
	o, c := b.in[LineOpenSwitch], b.in[LineClosedSwitch]
	switch {
	case b.lines.Has(LineFault) && b.in[LineFault]:
		b.enterFault("fault_input", "the barrier controller reports a fault")
	case o && c:
		b.enterFault("switches", "both position switches made")
	case o:
		// No blind close: it closes once a vehicle is through or none came.
		if b.o.Held {
			if err := b.set(LineOpen, true); err != nil {
				b.enterFault("output", err.Error())
				return
			}
		}
		b.setState(Open, cause+": open switch made")
		b.closeLater(now)
	case c:
		if b.o.Held {
			if err := b.set(LineOpen, false); err != nil {
				b.enterFault("output", err.Error())
				return
			}
		}
		b.setState(Closed, cause+": closed switch made")
	case b.o.FailOpen:
		b.driveOpen(cause + ": position unknown; failing open")
	case b.in[LineSafety]:
		// The arm may be up over a vehicle: treat it as open, so that it
		// closes once the vehicle is through.
		if b.o.Held {
			if err := b.set(LineOpen, true); err != nil {
				b.enterFault("output", err.Error())
				return
			}
		}
		b.setState(Open, cause+": position unknown, a vehicle on the safety loop")
	default:
		b.driveClose(cause + ": position unknown; failing secure")
	}
}

func (b *Barrier) setState(to State, cause string) {
	from := b.st
	if from == to {
		return
	}
	b.st = to
	now := b.clk.Now()
	tr := Transition{Lane: b.o.Lane, From: from, To: to, Cause: cause, At: now}
	ev := b.log.Info()
	if to == Fault {
		tr.Fault = b.cause
		ev = b.log.Error()
	}
	ev.Str("from", from.String()).Str("to", to.String()).Str("cause", cause).Msg("barrier")
	b.m.transition(from, to)
	b.publish()
	if b.o.Telemetry != nil {
		b.o.Telemetry.GateTransition(tr)
	}
	b.emit(Event{Kind: EventTransition, At: now, Transition: tr})
	if to == Closed {
		b.allowed, b.passes, b.commanded, b.onLoop = 0, 0, false, false
		b.due[tClose], b.due[tSettle] = time.Time{}, time.Time{}
		b.emit(Event{Kind: EventClosed, At: now})
	}
}

func (b *Barrier) publish() {
	b.mu.Lock()
	b.state = b.st
	b.fault = ""
	if b.st == Fault {
		b.fault = b.cause
	}
	b.mu.Unlock()
}

func (b *Barrier) emit(e Event) {
	select {
	case b.events <- e:
	default:
		b.m.dropped.Inc()
		b.log.Error().Str("event", e.Kind.String()).Msg("barrier event dropped: the lane is not taking them")
	}
}

// shutdown leaves the barrier as the fail mode says: failing open, open;
// failing secure, closed, but never on a vehicle: it waits up to
// ShutdownWait for the safety loop to clear and otherwise leaves the
// barrier up. A pulse in progress is finished first.
func (b *Barrier) shutdown() {
	b.finishPulse()
	if b.o.FailOpen {
		if err := b.outputsOpen(); err != nil {
			b.log.Error().Err(err).Msg("stopping: open output")
		}
		b.finishPulse()
		b.log.Info().Msg("stopping: barrier left open (fail-open)")
		return
	}
	if b.st == Closed {
		b.log.Info().Msg("stopping: barrier closed")
		return
	}
	if b.in[LineSafety] {
		tm := b.clk.NewTimer(b.o.ShutdownWait)
		defer tm.Stop()
	wait:
		for b.in[LineSafety] {
			select {
			case e, ok := <-b.edges:
				if !ok {
					break wait
				}
				if e.Line < 0 || e.Line >= NumLines || e.Line.Output() {
					continue
				}
				if e.Err != nil {
					v, err := b.lines.Value(e.Line)
					e.Active = v || (err != nil && e.Line == LineSafety) // unreadable: occupied
				}
				b.in[e.Line] = e.Active
			case <-tm.C():
				break wait
			}
		}
	}
	if b.in[LineSafety] {
		b.log.Warn().Msg("stopping with a vehicle on the safety loop: barrier left up")
		return
	}
	if err := b.outputsClose(); err != nil {
		b.log.Error().Err(err).Msg("stopping: close output")
	}
	b.finishPulse()
	b.log.Info().Msg("stopping: barrier closed (fail-secure)")
}

// finishPulse waits out a pulse in progress and ends it, so a stopping
// anprd leaves no relay energised and cuts no pulse short.
func (b *Barrier) finishPulse() {
	if b.pulsing < 0 {
		return
	}
	if d := b.due[tPulse].Sub(b.clk.Now()); d > 0 {
		tm := b.clk.NewTimer(d)
		<-tm.C()
	}
	l := b.pulsing
	b.pulsing, b.due[tPulse] = -1, time.Time{}
	if err := b.set(l, false); err != nil {
		b.log.Error().Err(err).Msg("stopping: ending a pulse")
	}
}
