// Package lane runs one entrance or exit in the order data flows: a
// vehicle on the arming loop asks the camera to read (or the camera's
// own motion does, where there is no loop); its read goes to the access
// decision; the barrier opens or stays shut; and the passage — read,
// decision, what the barrier did, the moments trigger, first read,
// decision, open command and vehicle through, the evidence images —
// goes to the outbox. A second vehicle through one opening is a
// tailgating passage with its own read and decision; the button and the
// remote command open the barrier and record a manual passage saying who
// and why; a free-flow lane has no barrier and records every vehicle.
//
// A vehicle that backs out records no entry. The decision records its
// presence change at once (access.Desk.ReserveJournal), in the transaction that
// counted the permit's vehicles, so the permit's place is held while the
// car is in front of the arm and a second car of the permit at another
// lane is refused meanwhile; if the car never goes through (the barrier
// closes without it, or fails to open) the lane releases the reservation
// (access.Desk.Release) and the passage says it did not pass.
//
// The barrier never waits for the outbox: the open command goes out right
// after the decision, and the passage is recorded once the vehicle is
// through (or turned away), when its evidence has come or waited long
// enough. A passage the outbox refuses is kept and retried, never
// dropped. From its decision until the outbox has it, a passage is also
// in the desk's journal (written in the decision's transaction, deleted in
// the outbox's), so a crash meanwhile loses nothing: the daemon replays
// the journal at start-up, before the lanes run.
//
// This package must not import camera, GPIO or network code: it reads
// events from a small interface (Offer), decides through Desk, drives a
// Barrier and writes to a Sink, and reads time only from its clock.
package lane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"anprd/camera/track"
	"anprd/gate"
	"anprd/internal/access"
	"anprd/internal/clock"
	"anprd/internal/decide"
	"anprd/internal/passage"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ReadEvent is the camera's report on one vehicle: the tracker's event
// and, for final events, the evidence images kept.
type ReadEvent struct {
	track.Event
	Evidence passage.Evidence
}

// Desk decides, records presence and journals the passages in hand;
// *access.Desk is one. The journal keeps a passage from its decision
// until the sink has recorded it (the outbox forgets the entry in the
// transaction that records the passage), so a crash in between loses
// nothing: the daemon replays what is left at start-up (access.Replay).
type Desk interface {
	// ReserveJournal decides r and records its presence change and the
	// passage draft makes of the decision, in one transaction.
	ReserveJournal(lane string, r decide.Read, draft access.Draft) (*access.Reservation, error)
	// Release undoes a reservation whose vehicle did not go through, and
	// marks its journal entry so.
	Release(*access.Reservation) (bool, error)
	// Journal keeps (or rewrites) a passage in hand: a manual opening,
	// which no decision made, or a vehicle now known to be through.
	Journal(passage.Passage) error
}

// Sink keeps passages durably: the outbox. Record returns once the
// passage is committed.
type Sink interface {
	Record(passage.Passage) error
}

// Barrier is the lane's barrier; *gate.Barrier is one. The lane runs it.
type Barrier interface {
	Run(ctx context.Context) error
	Open(cause string) (time.Time, error)
	Events() <-chan gate.Event
	Has(gate.Line) bool
}

// Options configure a lane. Zero durations take the defaults.
type Options struct {
	Site, Device string
	Lane         string
	Direction    string  // entry or exit
	Barrier      Barrier // nil for a free-flow lane
	// Trigger asks the camera to read its next frame whatever the scene
	// does (the watcher's Trigger); nil if there is none.
	Trigger func()
	Desk    Desk
	Sink    Sink
	// IDs makes the passages' IDs; the box's lanes share one so that
	// their IDs sort in the order they were made. Default: the lane's own.
	IDs     *passage.Generator
	Clock   clock.Clock // default clock.Real
	Log     zerolog.Logger
	Metrics *Metrics // default: metrics registered nowhere

	// ReadTimeout: a vehicle on the arming loop with no read this long
	// after it arrived is decided as unreadable (an exit lets it out, an
	// entrance keeps it out); default 4 s.
	ReadTimeout time.Duration
	// ReadMaxAge: when the arming loop goes occupied, a read not yet
	// decided on is used at once if its vehicle is still in view (its
	// track has not ended) or it is this recent; default 3 s.
	ReadMaxAge time.Duration
	// EvidenceWait: how long a finished passage waits for its vehicle's
	// final read event and evidence images before it is recorded without
	// them; default 8 s.
	EvidenceWait time.Duration
	// VisitTimeout: a vehicle let in that has neither gone through nor
	// seen the barrier close by then counts as not through; default 10 m.
	VisitTimeout time.Duration
	// ManualReadAge: a manual opening's passage takes the read of the
	// vehicle at the barrier from this far back; default 2 m.
	ManualReadAge time.Duration
	// DrainTimeout: when the lane stops, vehicles let in get this long to
	// go through; default 3 s.
	DrainTimeout time.Duration
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadTimeout, 4*time.Second)
	def(&o.ReadMaxAge, 3*time.Second)
	def(&o.EvidenceWait, 8*time.Second)
	def(&o.VisitTimeout, 10*time.Minute)
	def(&o.ManualReadAge, 2*time.Minute)
	def(&o.DrainTimeout, 3*time.Second)
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.IDs == nil {
		o.IDs = new(passage.Generator)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(prometheus.NewRegistry())
	}
}

// Lane is one lane's orchestration. Offer and OpenManual may be called
// from any goroutine; everything else happens in Run's.
type Lane struct {
	o         Options
	clk       clock.Clock
	log       zerolog.Logger
	m         *laneMetrics
	reads     chan ReadEvent
	manual    chan manualReq
	hasArming bool

	// Owned by Run's goroutine.
	seen       []*seen
	visits     []*visit
	arming     bool      // the arming loop is occupied
	armedAt    time.Time // it went occupied and nothing was decided for that vehicle yet
	armVisit   *visit    // what was decided for the vehicle on the arming loop
	cycleStart time.Time // the barrier began to open
	alarm      bool      // the safety loop has been occupied too long
	unrecorded []passage.Passage
	retryAt    time.Time
	retryWait  time.Duration
	stopping   bool
}

// seen is one vehicle's read events, by track.
type seen struct {
	ev    ReadEvent
	at    time.Time // the latest event's arrival
	final bool
	visit *visit // the passage that used the read; nil while unused
}

// visit is a passage in hand.
type visit struct {
	p        passage.Passage
	res      *access.Reservation
	seen     *seen
	await    bool      // the barrier opened for it; waiting for it to go through
	since    time.Time // when it began to wait
	recordAt time.Time // waiting for evidence until then
	final    bool      // its track's final event (evidence) has come
}

type manualReq struct {
	m     passage.ManualOpen
	reply chan error
}

// readBuffer is far more than a lane receives between two turns of its
// loop: a tracker reports a vehicle twice.
const readBuffer = 64

// New returns a lane; Run starts it (and its barrier).
func New(o Options) (*Lane, error) {
	switch {
	case o.Desk == nil || o.Sink == nil:
		return nil, fmt.Errorf("lane %s: a desk and a sink are required", o.Lane)
	case o.Direction != "entry" && o.Direction != "exit":
		return nil, fmt.Errorf("lane %s: direction %q is not entry or exit", o.Lane, o.Direction)
	case o.Site == "" || o.Device == "" || o.Lane == "":
		return nil, errors.New("lane: site, device and lane ids are required")
	}
	o.defaults()
	l := &Lane{o: o, clk: o.Clock, log: o.Log, m: o.Metrics.forLane(o.Lane),
		reads: make(chan ReadEvent, readBuffer), manual: make(chan manualReq)}
	l.hasArming = o.Barrier != nil && o.Barrier.Has(gate.LineArming)
	return l, nil
}

// Offer hands the lane a read event. It never blocks: the camera's loop
// calls it between frames.
func (l *Lane) Offer(ev ReadEvent) {
	select {
	case l.reads <- ev:
	default:
		l.m.dropped.Inc()
		l.log.Error().Uint64("track", ev.TrackID).Msg("read event dropped: the lane is behind")
	}
}

// ErrNoBarrier is returned by OpenManual at a free-flow lane.
var ErrNoBarrier = errors.New("lane: no barrier to open")

// OpenManual opens the barrier by hand (a remote command, the status
// page) and records a manual passage saying who and why. Source is
// "remote" or "page"; operator and reason are required.
func (l *Lane) OpenManual(ctx context.Context, m passage.ManualOpen) error {
	switch {
	case m.Source != "remote" && m.Source != "page":
		return fmt.Errorf("lane: manual source %q is not remote or page", m.Source)
	case m.Operator == "" || m.Reason == "":
		return errors.New("lane: a manual opening needs the operator and the reason")
	}
	r := manualReq{m: m, reply: make(chan error, 1)}
	select {
	case l.manual <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run runs the lane, and its barrier, until ctx ends. Stopping, it gives
// vehicles let in DrainTimeout to go through, records every passage in
// hand, and then stops the barrier, which leaves it as its fail mode
// says. It returns an error if the barrier stops on its own.
func (l *Lane) Run(ctx context.Context) error {
	var events <-chan gate.Event
	bctx, bstop := context.WithCancel(context.Background())
	defer bstop()
	berr := make(chan error, 1)
	if b := l.o.Barrier; b != nil {
		events = b.Events()
		go func() { berr <- b.Run(bctx) }()
	}
	tm := l.clk.NewTimer(time.Hour)
	defer tm.Stop()
	for {
		l.armTimer(tm)
		select {
		case <-ctx.Done():
			l.drain(events)
			bstop()
			if l.o.Barrier != nil {
				return <-berr
			}
			return nil
		case ev := <-l.reads:
			l.onRead(ev)
		case e := <-events:
			l.onGate(e)
		case r := <-l.manual:
			r.reply <- l.onManual(r.m, "manual: "+r.m.Source)
		case err := <-berr:
			l.finish("the barrier stopped")
			if err == nil {
				err = errors.New("stopped on its own")
			}
			return fmt.Errorf("lane %s: barrier: %w", l.o.Lane, err)
		case <-tm.C():
			l.onTimers()
		}
	}
}

// drain lets vehicles let in go through for up to DrainTimeout, then
// records everything in hand.
func (l *Lane) drain(events <-chan gate.Event) {
	l.stopping = true
	if events != nil && l.awaiting() > 0 {
		tm := l.clk.NewTimer(l.o.DrainTimeout)
		defer tm.Stop()
	wait:
		for l.awaiting() > 0 {
			select {
			case e := <-events:
				l.onGate(e)
			case <-tm.C():
				break wait
			}
		}
	}
	l.finish("anprd stopping")
}

// finish records every passage in hand and retries the unrecorded once;
// what the outbox still refuses is logged in full, the last resort.
func (l *Lane) finish(why string) {
	l.stopping = true
	for _, v := range slices.Clone(l.visits) {
		if v.await {
			l.notThrough(v, why)
		} else {
			l.record(v)
		}
	}
	l.retry()
	for _, p := range l.unrecorded {
		l.log.Error().Interface("passage", p).Msg("passage not recorded: the outbox refused it until anprd stopped")
	}
}

func (l *Lane) awaiting() int {
	n := 0
	for _, v := range l.visits {
		if v.await {
			n++
		}
	}
	return n
}

// armTimer sets tm to the earliest of the lane's deadlines.
func (l *Lane) armTimer(tm clock.Timer) {
	var next time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if !l.armedAt.IsZero() {
		at(l.armedAt.Add(l.o.ReadTimeout))
	}
	for _, v := range l.visits {
		at(v.recordAt)
		if v.await && !l.alarm {
			at(v.since.Add(l.o.VisitTimeout))
		}
	}
	at(l.retryAt)
	tm.Stop()
	if !next.IsZero() {
		tm.Reset(max(0, next.Sub(l.clk.Now())))
	}
}

func (l *Lane) onTimers() {
	now := l.clk.Now()
	if !l.armedAt.IsZero() && !now.Before(l.armedAt.Add(l.o.ReadTimeout)) {
		// A vehicle on the loop and no read: decide it unreadable.
		l.log.Info().Dur("after", l.o.ReadTimeout).Msg("no read of the vehicle on the arming loop")
		l.decideVehicle(nil, now)
	}
	for _, v := range slices.Clone(l.visits) {
		switch {
		case !v.recordAt.IsZero() && !now.Before(v.recordAt):
			l.record(v)
		case v.await && !l.alarm && !now.Before(v.since.Add(l.o.VisitTimeout)):
			l.notThrough(v, fmt.Sprintf("not through within %v", l.o.VisitTimeout))
		}
	}
	if !l.retryAt.IsZero() && !now.Before(l.retryAt) {
		l.retry()
	}
}

// onRead takes a read event: it is kept by track, attached as evidence
// to the passage that used its track, and decided on when a vehicle is
// waiting for it.
func (l *Lane) onRead(ev ReadEvent) {
	now := l.clk.Now()
	l.prune(now)
	var s *seen
	if ev.TrackID != 0 {
		for _, x := range l.seen {
			if x.ev.TrackID == ev.TrackID {
				s = x
				break
			}
		}
	}
	if s == nil {
		s = &seen{}
		l.seen = append(l.seen, s)
	}
	s.ev, s.at = ev, now
	if ev.Kind == track.Final {
		s.final = true
		if v := s.visit; v != nil {
			v.p.Evidence, v.final = ev.Evidence, true
			if !v.recordAt.IsZero() {
				l.record(v)
			}
		}
	}
	if l.wants(s) {
		l.decideVehicle(s, now)
	}
}

// wants says whether a read is to be decided on now.
func (l *Lane) wants(s *seen) bool {
	if s.visit != nil || l.stopping {
		return false
	}
	if l.hasArming {
		switch {
		case !l.armedAt.IsZero():
			// A vehicle is on the loop and nothing was decided for it: its
			// read counts even if the tracker saw the plate moments ago
			// (a car that backed out and came back).
			return true
		case l.arming && l.armVisit != nil && l.armVisit.p.Decision != nil && l.armVisit.p.Gate.Action == passage.Kept &&
			l.armVisit.p.Decision.Class == decide.Unreadable && s.ev.Plate != "":
			// Turned away unread, and now there is a read: try again.
			return true
		}
		return false // kept: used if the vehicle drives onto the loop soon
	}
	return !s.ev.Suppressed
}

// prune forgets reads too old to be anyone's.
func (l *Lane) prune(now time.Time) {
	keep := max(l.o.ManualReadAge, l.o.ReadMaxAge, time.Minute)
	l.seen = slices.DeleteFunc(l.seen, func(s *seen) bool {
		return now.Sub(s.at) > keep && (s.visit == nil || !slices.Contains(l.visits, s.visit))
	})
}

// decideVehicle decides on s (nil: no read) for the vehicle at the lane,
// opens the barrier or not, and puts the passage in hand.
func (l *Lane) decideVehicle(s *seen, now time.Time) {
	trigger := l.armedAt
	if trigger.IsZero() && s != nil {
		trigger = s.ev.First // the camera's own motion started it
	}
	r := decide.Read{Time: now}
	if s != nil {
		r.Plate, r.Conf, r.Candidates = s.ev.Plate, s.ev.Conf, s.ev.RunnersUp
	}
	v := l.newVisit(passage.Vehicle, s, now)
	v.p.Timings = passage.Timings{Trigger: trigger}
	if s != nil {
		v.p.Timings.FirstRead = s.at // earlier than the trigger when read on the way in
	}
	res, err := l.reserve(v, r)
	decided := l.clk.Now()
	v.p.Time, v.p.Timings.Decided = decided, decided
	if err != nil {
		if s == nil {
			l.armedAt = time.Time{} // the read timeout tried once more; no busy retry
		}
		// The vehicle was there all the same: its passage says why
		// nothing was decided (at a free-flow lane it drove on).
		v.p.Gate.Action = passage.Kept
		if l.o.Barrier == nil {
			v.p.Gate = passage.Gate{Action: passage.NoBarrier, Passed: true}
		}
		l.log.Error().Err(err).Msg("no decision; barrier kept shut")
		l.awaitRecord(v, decided)
		return
	}
	l.armedAt = time.Time{}
	if l.arming {
		l.armVisit = v
	}
	switch {
	case l.o.Barrier == nil:
		v.p.Gate = passage.Gate{Action: passage.NoBarrier, Passed: true}
		l.steps(v)
		l.awaitRecord(v, decided)
	case res.Decision.Action == decide.Deny:
		v.p.Gate.Action = passage.Kept
		l.steps(v)
		l.awaitRecord(v, decided)
	default:
		cmd, err := l.o.Barrier.Open("vehicle")
		if err != nil {
			v.p.Gate = passage.Gate{Action: passage.Failed, Fault: err.Error()}
			l.log.Error().Err(err).Msg("barrier did not open for a vehicle let in")
			l.steps(v)
			l.notThrough(v, "barrier failed")
			return
		}
		v.p.Gate.Action, v.p.Timings.Command = passage.Opened, cmd
		l.steps(v)
		v.await, v.since = true, cmd
	}
	d := res.Decision
	l.log.Info().Str("class", string(d.Class)).Str("reason", string(d.Reason)).Str("action", string(d.Action)).
		Str("gate", string(v.p.Gate.Action)).Dur("latency", v.p.Timings.Decided.Sub(trigger)).Msg("vehicle decided")
	l.log.Debug().Str("plate", d.Plate).Str("read", d.Read).Msg("vehicle decided: plate")
}

// DecisionFailed is the reason of a passage whose vehicle could not be
// decided on (the database failed); its note says why.
const DecisionFailed decide.Reason = "decision_failed"

func failedDecision(err error) *passage.Decision {
	return &passage.Decision{Reason: DecisionFailed, Note: err.Error()}
}

// newVisit puts a passage in hand, with the read s (nil: none). Its ID
// is made now, before the decision journals it: the lane's record and a
// replay of the journal after a crash are then one passage.
func (l *Lane) newVisit(k passage.Kind, s *seen, now time.Time) *visit {
	v := &visit{}
	v.p.Kind = k
	v.p.ID = l.o.IDs.New(now)
	v.p.Site, v.p.Device, v.p.Lane, v.p.Direction = l.o.Site, l.o.Device, l.o.Lane, l.o.Direction
	l.fill(v, s, nil)
	l.visits = append(l.visits, v)
	return v
}

// reserve decides r for v's vehicle and journals v's passage as it stands
// with the decision, in one transaction; v gets the decision, or, when
// there is none, a decision that says why.
func (l *Lane) reserve(v *visit, r decide.Read) (*access.Reservation, error) {
	res, err := l.o.Desk.ReserveJournal(l.o.Lane, r, func(d decide.Decision) passage.Passage {
		p := v.p
		p.Decision, p.Session = passage.FromDecision(d)
		if p.Read == nil {
			p.Read = &passage.Read{}
		}
		if p.Time.IsZero() {
			p.Time = r.Time
		}
		if p.Timings.Decided.IsZero() {
			p.Timings.Decided = r.Time
		}
		if p.Gate.Action == "" {
			// What the lane does next, a moment after the transaction.
			switch {
			case l.o.Barrier == nil:
				p.Gate = passage.Gate{Action: passage.NoBarrier, Passed: true}
			case d.Action == decide.Deny:
				p.Gate.Action = passage.Kept
			default:
				p.Gate.Action = passage.Opened
			}
		}
		return p
	})
	if err != nil {
		l.m.decideErrors.Inc()
		if v.p.Decision == nil {
			v.p.Decision = failedDecision(err)
		}
	} else {
		l.fill(v, v.seen, res)
	}
	if v.p.Read == nil && v.p.Kind != passage.Manual {
		v.p.Read = &passage.Read{} // decided unreadable
	}
	return res, err
}

// fill gives v the read s (nil: none) and the decision res (nil: none).
func (l *Lane) fill(v *visit, s *seen, res *access.Reservation) {
	v.res, v.seen = res, s
	if s != nil {
		s.visit = v
		ev := s.ev
		v.p.Read = &passage.Read{Plate: ev.Plate, Conf: ev.Conf, Country: string(ev.Country), Candidates: ev.RunnersUp,
			Frames: len(ev.Frames), Direction: ev.Direction}
		if s.final {
			v.p.Evidence, v.final = ev.Evidence, true
		}
	}
	if res != nil {
		v.p.Decision, v.p.Session = passage.FromDecision(res.Decision)
	}
}

// steps observes the passage's latency steps up to the open command.
func (l *Lane) steps(v *visit) {
	t := v.p.Timings
	obs := func(step string, from, to time.Time) {
		if !from.IsZero() && !to.IsZero() && !to.Before(from) {
			l.m.step(step, to.Sub(from).Seconds())
		}
	}
	obs(StepTriggerToRead, t.Trigger, t.FirstRead)
	obs(StepReadToDecision, t.FirstRead, t.Decided)
	obs(StepDecisionToOpen, t.Decided, t.Command)
	obs(StepTriggerToOpen, t.Trigger, t.Command)
}

// journal rewrites v's journal entry as v stands, with its presence
// change.
func (l *Lane) journal(v *visit) {
	p := v.p
	p.Presence = v.res.Presence()
	if err := l.o.Desk.Journal(p); err != nil {
		l.log.Error().Err(err).Str("id", p.ID.String()).Msg("passage not journaled; a crash before it is recorded would lose what the lane knows of it")
	}
}

// recordsAtOnce says whether awaitRecord will record v at once rather
// than wait for its evidence.
func (l *Lane) recordsAtOnce(v *visit) bool { return v.final || v.seen == nil || l.stopping }

// awaitRecord records v once its evidence has come, or EvidenceWait
// after now.
func (l *Lane) awaitRecord(v *visit, now time.Time) {
	v.await = false
	if l.recordsAtOnce(v) {
		l.record(v)
		return
	}
	v.recordAt = now.Add(l.o.EvidenceWait)
}

// notThrough: a vehicle let in did not go through. Its presence change
// is undone and its passage says so.
func (l *Lane) notThrough(v *visit, why string) {
	v.await = false
	v.p.Gate.Passed = false
	if v.res != nil {
		// Also marks its journal entry: not through.
		released, err := l.o.Desk.Release(v.res)
		switch {
		case err != nil:
			l.log.Error().Err(err).Msg("vehicle not through, but its presence change could not be undone")
		case !released && v.res.Changed():
			l.log.Info().Msg("vehicle not through; presence had moved on, left as it is")
		}
	}
	l.log.Info().Str("kind", string(v.p.Kind)).Str("why", why).Msg("vehicle let in did not go through")
	l.awaitRecord(v, l.clk.Now())
}

// onGate takes the barrier's events.
func (l *Lane) onGate(e gate.Event) {
	switch e.Kind {
	case gate.EventArming:
		l.arming = e.Active
		if !e.Active {
			l.armedAt, l.armVisit = time.Time{}, nil
			return
		}
		if l.stopping {
			return
		}
		l.armedAt, l.armVisit = e.At, nil
		if l.o.Trigger != nil {
			l.o.Trigger()
		}
		// The camera may have read the plate on the way in: a read of a
		// vehicle still in view (its track not ended: the tracker reports
		// a vehicle early only once), or a recent one. The oldest is the
		// first in the queue.
		now := l.clk.Now()
		for _, s := range l.seen {
			if s.visit == nil && (!s.final || now.Sub(s.at) <= l.o.ReadMaxAge) {
				l.decideVehicle(s, now)
				break
			}
		}
	case gate.EventTransition:
		tr := e.Transition
		if (tr.From == gate.Closed || tr.From == gate.Unknown) && (tr.To == gate.Opening || tr.To == gate.Open) {
			l.cycleStart = e.At
		}
		if tr.To == gate.Fault {
			for _, v := range l.visits {
				if v.await && v.p.Gate.Fault == "" {
					v.p.Gate.Fault = tr.Fault
				}
			}
		}
	case gate.EventAlarm:
		// A vehicle stands on the safety loop: whoever was let in has not
		// given up, however long it takes.
		l.alarm = e.Active
		if !e.Active {
			for _, v := range l.visits {
				if v.await {
					v.since = e.At
				}
			}
		}
	case gate.EventPassed:
		l.onPassed(e)
	case gate.EventClosed:
		// The opening is over: whoever was let in and did not go through
		// backed out. A vehicle whose open command came after the arm was
		// down (the closed edge and the command crossed) waits for its
		// own opening.
		for _, v := range slices.Clone(l.visits) {
			if v.await && v.since.Before(e.At) {
				l.notThrough(v, "barrier closed")
			}
		}
		l.cycleStart = time.Time{}
	case gate.EventButton:
		if !l.stopping {
			if err := l.onManual(passage.ManualOpen{Source: "button"}, "manual: button"); err != nil {
				l.log.Error().Err(err).Msg("button: barrier not opened")
			}
		}
	}
}

// onPassed: a vehicle went through. It is the first let in that has not
// gone through yet; if there is none, it went through on someone else's
// opening (tailgating), or on one anprd did not command.
func (l *Lane) onPassed(e gate.Event) {
	for _, v := range l.visits {
		if !v.await || v.since.After(e.At) {
			continue // a vehicle let in after this one had gone through
		}
		v.p.Gate.Passed, v.p.Timings.Passed, v.p.Time = true, e.At, e.At
		journaled := false
		if v.p.Kind == passage.Manual && v.p.Read == nil {
			journaled = l.attachRead(v, e.At.Add(-l.o.ManualReadAge))
		}
		if !v.p.Timings.Command.IsZero() {
			l.m.step(StepOpenToThrough, e.At.Sub(v.p.Timings.Command).Seconds())
		}
		if !journaled && !l.recordsAtOnce(v) {
			// It waits for its evidence: a replay after a crash meanwhile
			// then knows that it went through.
			l.journal(v)
		}
		l.awaitRecord(v, e.At)
		return
	}
	kind := passage.Tailgate
	if e.N == 1 && !e.Commanded {
		kind = passage.Vehicle // the barrier was opened by something else, or found open
	}
	since := l.cycleStart
	if since.IsZero() {
		since = e.At
	}
	s := l.candidate(since.Add(-l.o.ReadMaxAge))
	r := decide.Read{Time: e.At, Through: true}
	if s != nil {
		r.Plate, r.Conf, r.Candidates = s.ev.Plate, s.ev.Conf, s.ev.RunnersUp
	}
	v := l.newVisit(kind, s, e.At)
	v.p.Gate = passage.Gate{Action: passage.Opened, Passed: true}
	v.p.Time = e.At
	v.p.Timings = passage.Timings{Trigger: l.cycleStart, Passed: e.At}
	if s != nil {
		v.p.Timings.FirstRead = s.at
	}
	if _, err := l.reserve(v, r); err != nil {
		l.log.Error().Err(err).Msg("vehicle through without an opening of its own: no decision")
	}
	v.p.Timings.Decided = l.clk.Now()
	l.log.Warn().Str("kind", string(kind)).Int("n", e.N).Bool("commanded", e.Commanded).Bool("read", s != nil).
		Str("class", string(v.p.Decision.Class)).Msg("vehicle through without an opening of its own")
	l.awaitRecord(v, e.At)
}

// candidate is the newest read of a vehicle still in view, or since
// since, not used by a vehicle the barrier opened for: the vehicle that
// slipped through, or the one a manual opening let in.
func (l *Lane) candidate(since time.Time) *seen {
	for i := len(l.seen) - 1; i >= 0; i-- {
		s := l.seen[i]
		if s.final && s.at.Before(since) {
			continue
		}
		if s.visit == nil || (s.visit.p.Gate.Action != passage.Opened && s.visit.p.Kind == passage.Vehicle) {
			return s
		}
	}
	return nil
}

// attachRead gives a manual passage the read of the vehicle it let
// through, and a decision for it: the vehicle is inside now.
func (l *Lane) attachRead(v *visit, since time.Time) (journaled bool) {
	s := l.candidate(since)
	if s == nil {
		return false
	}
	l.fill(v, s, nil)
	v.p.Timings.FirstRead = s.at
	_, err := l.reserve(v, decide.Read{Plate: s.ev.Plate, Conf: s.ev.Conf, Candidates: s.ev.RunnersUp,
		Time: v.p.Timings.Passed, Through: true})
	if err != nil {
		l.log.Error().Err(err).Msg("manual opening: no decision for the vehicle through")
		return false
	}
	v.p.Timings.Decided = l.clk.Now()
	return true
}

// onManual opens the barrier by hand and puts a manual passage in hand.
func (l *Lane) onManual(m passage.ManualOpen, cause string) error {
	if l.o.Barrier == nil {
		return ErrNoBarrier
	}
	now := l.clk.Now()
	v := l.newVisit(passage.Manual, nil, now)
	v.p.Manual = &m
	v.p.Time = now
	v.p.Timings.Trigger = now
	cmd, err := l.o.Barrier.Open(cause)
	if err != nil {
		v.p.Gate = passage.Gate{Action: passage.Failed, Fault: err.Error()}
		l.awaitRecord(v, now)
		return err
	}
	v.p.Gate.Action, v.p.Timings.Command = passage.Opened, cmd
	v.await, v.since = true, cmd
	l.journal(v)
	l.log.Info().Str("source", m.Source).Str("operator", m.Operator).Str("reason", m.Reason).Msg("barrier opened by hand")
	return nil
}

// record hands a finished passage to the outbox.
func (l *Lane) record(v *visit) {
	l.visits = slices.DeleteFunc(l.visits, func(x *visit) bool { return x == v })
	v.recordAt = time.Time{}
	now := l.clk.Now()
	p := v.p
	p.Presence = v.res.Presence()
	if err := p.Validate(); err != nil {
		l.log.Error().Err(err).Str("id", p.ID.String()).Msg("passage fails its own checks; recorded anyway")
	}
	l.m.m.passages.WithLabelValues(l.o.Lane, string(p.Kind), string(p.Gate.Action)).Inc()
	if !p.Timings.Decided.IsZero() {
		l.m.step(StepDecisionToRecord, now.Sub(p.Timings.Decided).Seconds())
	}
	ev := l.log.Info().Str("id", p.ID.String()).Str("kind", string(p.Kind)).Str("gate", string(p.Gate.Action)).
		Bool("passed", p.Gate.Passed).Bool("evidence", p.Evidence.Plate != "")
	if p.Decision != nil {
		ev = ev.Str("class", string(p.Decision.Class))
	}
	ev.Msg("passage")
	l.put(p)
}

// put writes p to the sink, or keeps it for a retry.
func (l *Lane) put(p passage.Passage) {
	if len(l.unrecorded) > 0 {
		l.unrecorded = append(l.unrecorded, p) // keep the order
		l.m.unrecorded.Set(float64(len(l.unrecorded)))
		return
	}
	if err := l.o.Sink.Record(p); err != nil {
		l.m.recordErrors.Inc()
		l.log.Error().Err(err).Str("id", p.ID.String()).Msg("outbox refused the passage; kept and retried")
		l.unrecorded = append(l.unrecorded, p)
		l.m.unrecorded.Set(float64(len(l.unrecorded)))
		l.retryWait = time.Second
		l.retryAt = l.clk.Now().Add(l.retryWait)
	}
}

// retry hands the kept passages to the outbox again, in order, backing
// off up to 30 s while it refuses.
func (l *Lane) retry() {
	for len(l.unrecorded) > 0 {
		if err := l.o.Sink.Record(l.unrecorded[0]); err != nil {
			l.m.recordErrors.Inc()
			l.retryWait = min(2*l.retryWait, 30*time.Second)
			l.retryAt = l.clk.Now().Add(l.retryWait)
			l.log.Error().Err(err).Int("kept", len(l.unrecorded)).Msg("outbox still refuses passages")
			return
		}
		l.unrecorded = l.unrecorded[1:]
		l.m.unrecorded.Set(float64(len(l.unrecorded)))
	}
	l.unrecorded, l.retryAt = nil, time.Time{}
}
