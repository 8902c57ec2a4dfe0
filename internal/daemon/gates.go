package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"anprd/camera/watch"
	"anprd/gate"
	gatelane "anprd/gate/lane"
	"anprd/gate/setup"
	"anprd/internal/access"
	"anprd/internal/config"
	"anprd/internal/passage"
	"anprd/sync/command"
	"anprd/sync/homeassistant"
	"anprd/sync/protocol"
	"anprd/sync/telemetry"

	"github.com/prometheus/client_golang/prometheus"
)

// gateLane is a lane's decision, barrier and orchestration (gate/setup).
// It runs whether or not the plate reader loads: the barrier's safety
// rules, the button and the fail mode do not depend on the camera, and an
// exit still lets unread cars out.
type gateLane struct {
	id    string
	built *setup.Built
	w     atomic.Pointer[watch.Watcher] // the lane's camera, once built
}

// trigger is the arming loop's call to the camera.
func (g *gateLane) trigger() {
	if w := g.w.Load(); w != nil {
		w.Trigger()
	}
}

// offer hands a read event to the lane; it never blocks.
func (g *gateLane) offer(ev watch.Event) {
	g.built.Lane.Offer(gatelane.ReadEvent{Event: ev.Event, Evidence: passage.Evidence{Plate: ev.PlateImage, Scene: ev.SceneImage}})
}

// buildGates builds the access desk over the permit and presence stores
// and each lane's orchestration, with its passages going to the outbox.
// A lane whose GPIO lines cannot be claimed fails start-up, naming the
// lane and the line: a barrier anprd cannot drive must not look managed.
func (d *Daemon) buildGates(cfg *config.Config, reg prometheus.Registerer) error {
	d.replayJournal()
	lanes, err := access.Lanes(cfg)
	if err != nil {
		return fmt.Errorf("lanes: %w", err)
	}
	desk, err := access.New(d.permits, d.presence, lanes)
	if err != nil {
		return fmt.Errorf("lanes: %w", err)
	}
	gm := setup.NewMetrics(reg)
	d.gates = map[string]*gateLane{}
	built := map[string]*setup.Built{}
	for i := range cfg.Lanes {
		lc := &cfg.Lanes[i]
		g := &gateLane{id: lc.ID}
		b, err := setup.Lane(cfg, lc, g.trigger, setup.Deps{Desk: desk, Sink: d.link.sink, IDs: d.ids,
			Metrics: gm, Telemetry: gateTelemetry{d.link.tel, d.link.ha}, Log: d.log})
		if err != nil {
			d.closeGates()
			return err
		}
		g.built = b
		d.gates[lc.ID] = g
		built[lc.ID] = b
		// Lane.Run runs the barrier too, and leaves it safe when it returns.
		d.add(stageLanes, "gate/"+lc.ID, b.Lane.Run)
	}
	// Simulated barriers take their loops from the demo over a socket;
	// it serves until the end, so the drain of the lanes can be watched.
	simControl, err := setup.SimControl(cfg.State.Dir, built)
	if err != nil {
		d.closeGates()
		return err
	}
	if simControl != nil {
		d.add(stageHousekeeping, "sim-control", simControl)
	}
	return nil
}

// replayJournal records the passages that were in hand when anprd last
// stopped without finishing them (a crash, a power cut, a kill), before
// any lane runs: each is recorded once, with what was known at its
// decision and, for a vehicle let in, that whether it went through is
// unknown; its presence change stands. What cannot be recorded now (a
// full outbox that refuses new passages) stays in the journal for the
// next start.
func (d *Daemon) replayJournal() {
	log := d.log.With().Str("component", "journal").Logger()
	ps, err := access.Replay(d.db.DB, d.link.outbox.Record)
	for _, p := range ps {
		ev := log.Warn().Str("passage", p.ID.String()).Str("lane", p.Lane).Str("kind", string(p.Kind)).
			Str("gate", string(p.Gate.Action)).Bool("passed_unknown", p.Gate.PassedUnknown)
		if p.Decision != nil {
			ev = ev.Str("class", string(p.Decision.Class))
		}
		ev.Msg("passage in hand at the last stop recorded from the journal")
	}
	if err != nil {
		log.Error().Err(err).Msg("journal: passages left for the next start")
	}
}

// closeGates releases the lanes' GPIO lines, after their Run returned.
func (d *Daemon) closeGates() {
	gates := d.gates
	d.gates = nil
	for _, g := range gates {
		if g.built != nil {
			if err := g.built.Close(); err != nil {
				d.log.Error().Err(err).Str("lane", g.id).Msg("GPIO lines not released")
			}
		}
	}
}

// gateTelemetry sends barrier transitions with the uplink's telemetry,
// and to Home Assistant.
type gateTelemetry struct {
	tel *telemetry.Telemetry
	ha  *homeassistant.Discovery
}

func (t gateTelemetry) GateTransition(tr gate.Transition) {
	if t.ha != nil {
		t.ha.Barrier(tr.Lane, tr.To.String())
	}
	if t.tel == nil {
		return
	}
	detail := tr.Cause
	if tr.Fault != "" {
		detail += ": " + tr.Fault
	}
	t.tel.Report(protocol.Event{Time: tr.At, Lane: tr.Lane, Part: protocol.PartBarrier, State: tr.To.String(), Detail: detail})
}

// laneOpener opens a lane's barrier for a signed remote command, through
// the lane: the lane records the opening as a manual passage with the
// operator, the reason and the command, and gives it the vehicle that
// goes through (which must not count as a tailgater).
type laneOpener struct{ d *Daemon }

func (o laneOpener) Open(ctx context.Context, id string, m passage.ManualOpen) (bool, error) {
	g := o.d.gates[id]
	if g == nil || g.built == nil {
		return false, fmt.Errorf("no lane %q", id)
	}
	if g.built.Barrier == nil {
		return false, fmt.Errorf("lane %s is free-flow: it has no barrier", id)
	}
	if m.Source != "remote" || m.Operator == "" || m.Reason == "" {
		return false, errors.New("a remote opening needs the operator and the reason")
	}
	err := g.built.Lane.OpenManual(ctx, m)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, gatelane.ErrNoBarrier), ctx.Err() != nil:
		return false, err
	default:
		// The barrier refused or failed: the lane recorded the opening
		// as failed.
		return true, err
	}
}

// opener is what remote open commands use: Options.Opener when a test
// gives one, else the lanes' barriers (built after the link, looked up
// when a command comes).
func (d *Daemon) opener() command.Opener {
	if d.o.Opener != nil {
		return d.o.Opener
	}
	return laneOpener{d}
}
