// Package gpiocdev gives a barrier its GPIO lines through the Linux GPIO
// character device (go-gpiocdev): each line by chip and offset or by line
// name, active-low and debounce as configured, inputs delivering both
// edges, outputs driven. It implements gate.Lines and nothing more.
//
// Outputs are taken over at the level they have: a line that is already
// an output keeps its value (an open relay held by an anprd that
// restarted stays held, and the barrier's start-up recovery decides what
// to do with it); a line that is not yet an output starts inactive.
//
// Errors while running are reported, not handled: events the kernel lost
// come as an edge with Err (ErrEventsLost), and a line that can no longer
// be read fails Value; the barrier reads its inputs once a second and
// treats an unreadable safety loop as occupied. go-gpiocdev itself skips
// an event it cannot read, which shows as a gap in the event numbers.
//
// This package must not hold barrier logic, retry, or decide anything; it
// is the thin edge between gate and the kernel, and the only package
// besides the wiring that imports go-gpiocdev.
package gpiocdev

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"anprd/gate"

	"github.com/warthog618/go-gpiocdev"
)

// Spec names one line and how it is wired.
type Spec struct {
	Chip      string // gpiochip0 or /dev/gpiochip0
	Offset    int    // -1 when the line is given by Name
	Name      string
	ActiveLow bool
	Debounce  time.Duration // inputs only
}

func (s Spec) String() string {
	if s.Offset < 0 {
		return s.Chip + ":" + s.Name
	}
	return fmt.Sprintf("%s:%d", s.Chip, s.Offset)
}

// Lines are a barrier's lines on GPIO character devices.
type Lines struct {
	lines [gate.NumLines]*gpiocdev.Line
	edges chan gate.Edge
	quit  chan struct{}

	mu     sync.Mutex
	closed bool
}

// Open requests the lines in specs, as consumer (shown by gpioinfo). On
// an error no line stays requested.
func Open(specs map[gate.Line]Spec, consumer string) (*Lines, error) {
	l := &Lines{edges: make(chan gate.Edge, 64), quit: make(chan struct{})}
	for role := range gate.NumLines {
		spec, ok := specs[role]
		if !ok {
			continue
		}
		ln, err := l.request(role, spec, consumer)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("gpio: %s (%s): %w", role, spec, err)
		}
		l.lines[role] = ln
	}
	return l, nil
}

func (l *Lines) request(role gate.Line, spec Spec, consumer string) (*gpiocdev.Line, error) {
	chip, err := gpiocdev.NewChip(spec.Chip, gpiocdev.WithConsumer(consumer))
	if err != nil {
		return nil, err
	}
	defer chip.Close()
	off := spec.Offset
	if off < 0 {
		if off, err = chip.FindLine(spec.Name); err != nil {
			return nil, fmt.Errorf("no line named %q on %s: %w", spec.Name, spec.Chip, err)
		}
	}
	level := gpiocdev.LevelOption(spec.ActiveLow)
	if !role.Output() {
		var last uint32 // the line's last event; only the line's watcher goroutine touches it
		opts := []gpiocdev.LineReqOption{gpiocdev.AsInput, level, gpiocdev.WithBothEdges,
			gpiocdev.WithEventHandler(func(e gpiocdev.LineEvent) {
				for _, edge := range edgesOf(role, e, &last) {
					select {
					case l.edges <- edge:
					case <-l.quit:
						return
					}
				}
			})}
		if spec.Debounce > 0 {
			opts = append(opts, gpiocdev.WithDebounce(spec.Debounce))
		}
		return chip.RequestLine(off, opts...)
	}
	info, err := chip.LineInfo(off)
	if err != nil {
		return nil, err
	}
	ln, err := chip.RequestLine(off, gpiocdev.AsIs, level)
	if err != nil {
		return nil, err
	}
	v := 0
	if info.Config.Direction == gpiocdev.LineDirectionOutput {
		if v, err = ln.Value(); err != nil {
			ln.Close()
			return nil, err
		}
	}
	if err := ln.Reconfigure(gpiocdev.AsOutput(v), level); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// ErrEventsLost says that the kernel dropped events of a line (its
// buffer overflowed, or an event could not be read): the line's level is
// in doubt until it is read again.
var ErrEventsLost = errors.New("gpio: edge events lost")

// edgesOf turns a line's event into the barrier's edges. The kernel
// numbers each line's events (uAPI v2, from 1); a gap means events were
// lost, and an edge with ErrEventsLost follows, so that the barrier reads
// the line's level. last is the number of the line's previous event.
func edgesOf(role gate.Line, e gpiocdev.LineEvent, last *uint32) []gate.Edge {
	out := []gate.Edge{{Line: role, Active: e.Type == gpiocdev.LineEventRisingEdge}}
	if e.Type != gpiocdev.LineEventRisingEdge && e.Type != gpiocdev.LineEventFallingEdge {
		out[0] = gate.Edge{Line: role, Err: fmt.Errorf("gpio: event of unknown type %d", e.Type)}
	}
	if e.LineSeqno != 0 { // 0: uAPI v1, which does not number events
		if *last != 0 && e.LineSeqno != *last+1 {
			out = append(out, gate.Edge{Line: role, Err: fmt.Errorf("%w: %d of %s's events", ErrEventsLost, e.LineSeqno-*last-1, role)})
		}
		*last = e.LineSeqno
	}
	return out
}

// Has implements gate.Lines.
func (l *Lines) Has(role gate.Line) bool {
	return role >= 0 && role < gate.NumLines && l.lines[role] != nil
}

var errNotWired = errors.New("line not wired")

// Value implements gate.Lines.
func (l *Lines) Value(role gate.Line) (bool, error) {
	if !l.Has(role) {
		return false, errNotWired
	}
	v, err := l.lines[role].Value()
	return v == 1, err
}

// Set implements gate.Lines.
func (l *Lines) Set(role gate.Line, active bool) error {
	if !l.Has(role) || !role.Output() {
		return fmt.Errorf("%s: not a wired output", role)
	}
	v := 0
	if active {
		v = 1
	}
	return l.lines[role].SetValue(v)
}

// Edges implements gate.Lines. It is closed by Close.
func (l *Lines) Edges() <-chan gate.Edge { return l.edges }

// Close releases the lines; outputs keep their level as far as the GPIO
// driver does. Call it after the barrier's Run has returned.
func (l *Lines) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.quit)
	var errs []error
	for i, ln := range l.lines {
		if ln != nil {
			if err := ln.Close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", gate.Line(i), err))
			}
		}
	}
	close(l.edges)
	return errors.Join(errs...)
}

// LineState is what the kernel says of one line, read without requesting
// it (gpioinfo's view).
type LineState struct {
	Chip     string // as in the Spec
	Label    string // the chip's label, e.g. pinctrl-bcm2711
	Offset   int
	Name     string
	Used     bool   // requested by someone (or reserved by the kernel)
	Consumer string // who holds it, when Used
	Output   bool
}

// Chips lists the GPIO character devices present, gpiochip0 first.
func Chips() []string { return gpiocdev.Chips() }

// Inspect opens spec's chip, finds its line and reads the line's info,
// without requesting the line: it drives nothing and changes nothing, so
// it is safe beside a running anprd and a live barrier (anprctl doctor).
func Inspect(spec Spec) (LineState, error) {
	chip, err := gpiocdev.NewChip(spec.Chip)
	if err != nil {
		return LineState{}, err
	}
	defer chip.Close()
	st := LineState{Chip: spec.Chip, Label: chip.Label, Offset: spec.Offset}
	if spec.Offset < 0 {
		if st.Offset, err = chip.FindLine(spec.Name); err != nil {
			return st, fmt.Errorf("no line named %q on %s: %w", spec.Name, spec.Chip, err)
		}
	} else if spec.Offset >= chip.Lines() {
		return st, fmt.Errorf("%s has lines 0-%d, no line %d", spec.Chip, chip.Lines()-1, spec.Offset)
	}
	info, err := chip.LineInfo(st.Offset)
	if err != nil {
		return st, err
	}
	st.Name, st.Used, st.Consumer = info.Name, info.Used, info.Consumer
	st.Output = info.Config.Direction == gpiocdev.LineDirectionOutput
	return st, nil
}
