// Package setup builds one configured lane: its barrier — the GPIO lines
// through gate/gpiocdev, or the simulated barrier when the config says
// gate.simulate — with the options the config gives it, and the lane's
// orchestration on top. It is wiring for the daemon (and for tools that
// run a lane), so it may import the GPIO driver; gate and gate/lane may
// not.
//
// It must not run anything: Lane.Run (which runs the barrier) is the
// caller's to start under its errgroup.
package setup

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"anprd/gate"
	"anprd/gate/gpiocdev"
	"anprd/gate/lane"
	"anprd/gate/sim"
	"anprd/internal/clock"
	"anprd/internal/config"
	"anprd/internal/passage"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Metrics are the barrier and lane metrics, registered once for all
// lanes.
type Metrics struct {
	Gate *gate.Metrics
	Lane *lane.Metrics
}

// NewMetrics registers the barrier and lane metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{Gate: gate.NewMetrics(reg), Lane: lane.NewMetrics(reg)}
}

// Deps are what every lane shares.
type Deps struct {
	Desk      lane.Desk          // *access.Desk
	Sink      lane.Sink          // the outbox
	IDs       *passage.Generator // one for the box, so passage IDs sort across lanes
	Metrics   *Metrics
	Telemetry gate.Telemetry // optional: barrier transitions for the uplink
	Clock     clock.Clock    // default clock.Real
	Log       zerolog.Logger // the lane's sub-loggers are made from it
	Consumer  string         // the GPIO consumer name; default "anprd"
}

// Built is one lane, ready to run.
type Built struct {
	Lane    *lane.Lane
	Barrier *gate.Barrier // nil for a free-flow lane
	Sim     *sim.Barrier  // the simulated barrier, when the config asks for one
	lines   *gpiocdev.Lines
}

// Close releases the lane's GPIO lines. Call it after Lane.Run has
// returned (the barrier is then in its safe state).
func (b *Built) Close() error {
	if b.lines == nil {
		return nil
	}
	return b.lines.Close()
}

// Lane builds lane lc of cfg (which must have passed Validate). trigger
// asks the lane's camera to read the next frame; it may be nil, or a
// closure over a watcher made afterwards.
func Lane(cfg *config.Config, lc *config.Lane, trigger func(), d Deps) (*Built, error) {
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if d.Consumer == "" {
		d.Consumer = "anprd"
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	log := d.Log.With().Str("lane", lc.ID).Logger()
	out := &Built{}
	lo := LaneOptions(cfg, lc)
	lo.Trigger, lo.Desk, lo.Sink, lo.IDs, lo.Clock = trigger, d.Desk, d.Sink, d.IDs, d.Clock
	lo.Log, lo.Metrics = log.With().Str("component", "lane").Logger(), d.Metrics.Lane
	if g := lc.Gate; g != nil && lc.Mode == config.ModeBarrier {
		var lines gate.Lines
		if g.Simulate {
			out.Sim = sim.New(SimOptions(lc.ID, g, d.Clock))
			lines = out.Sim
			log.Warn().Msg("simulated barrier: no GPIO is driven")
		} else {
			gl, err := gpiocdev.Open(Specs(g), d.Consumer)
			if err != nil {
				return nil, fmt.Errorf("lanes %s: %w", lc.ID, err)
			}
			out.lines, lines = gl, gl
		}
		o := GateOptions(lc.ID, g)
		o.Clock, o.Metrics, o.Telemetry = d.Clock, d.Metrics.Gate, d.Telemetry
		o.Log = log.With().Str("component", "gate").Logger()
		b, err := gate.New(lines, o)
		if err != nil {
			out.Close()
			return nil, err
		}
		out.Barrier, lo.Barrier = b, b
	}
	l, err := lane.New(lo)
	if err != nil {
		out.Close()
		return nil, err
	}
	out.Lane = l
	return out, nil
}

// LaneOptions are the lane options a lane's config gives: its ids and
// timings (Lane adds the barrier, desk, sink and the rest).
func LaneOptions(cfg *config.Config, lc *config.Lane) lane.Options {
	lo := lane.Options{Site: cfg.Site.ID, Device: cfg.Site.Device, Lane: lc.ID, Direction: lc.Direction,
		EvidenceWait: time.Duration(lc.EvidenceWait)}
	if g := lc.Gate; g != nil && lc.Mode == config.ModeBarrier {
		lo.ReadTimeout, lo.ReadMaxAge = time.Duration(g.ReadTimeout), time.Duration(g.ReadWindow)
		lo.ManualReadAge, lo.VisitTimeout = time.Duration(g.ManualReadWindow), time.Duration(g.ReleaseAfter)
	}
	return lo
}

// GateOptions are the barrier options a gate's config gives.
func GateOptions(laneID string, g *config.Gate) gate.Options {
	return gate.Options{
		Lane:           laneID,
		Held:           g.OpenMode == config.OpenHeld,
		Pulse:          time.Duration(g.Pulse),
		FailOpen:       g.FailMode == config.FailOpen,
		CloseTimeout:   time.Duration(g.CloseTimeout),
		ConfirmTimeout: time.Duration(g.ConfirmTimeout),
		Travel:         time.Duration(g.Travel),
		Settle:         time.Duration(g.Settle),
		AlarmAfter:     time.Duration(g.SafetyAlarmAfter),
	}
}

// roles maps the config's lines to the barrier's.
func roles(g *config.Gate) map[gate.Line]*config.Line {
	return map[gate.Line]*config.Line{
		gate.LineOpen: g.Open, gate.LineClose: g.Close, gate.LineArming: g.ArmingLoop, gate.LineSafety: g.SafetyLoop,
		gate.LineOpenSwitch: g.OpenSwitch, gate.LineClosedSwitch: g.ClosedSwitch, gate.LineFault: g.Fault, gate.LineButton: g.Button,
	}
}

// Specs are the driver's specs of a gate's configured lines.
func Specs(g *config.Gate) map[gate.Line]gpiocdev.Spec {
	out := map[gate.Line]gpiocdev.Spec{}
	for role, l := range roles(g) {
		if l == nil {
			continue
		}
		chip := l.Chip
		if chip == "" {
			chip = g.Chip
		}
		out[role] = gpiocdev.Spec{Chip: chip, Offset: l.Offset, Name: l.Name, ActiveLow: l.ActiveLow, Debounce: time.Duration(l.Debounce)}
	}
	return out
}

// SimOptions describe the simulated barrier of a gate's config: the
// lines it has, pulse or held, and arm timings drawn from the lane id.
func SimOptions(laneID string, g *config.Gate, clk clock.Clock) sim.Options {
	var lines []gate.Line
	for role, l := range roles(g) {
		if l != nil {
			lines = append(lines, role)
		}
	}
	h := fnv.New64a()
	h.Write([]byte(laneID))
	return sim.Options{Lines: lines, Held: g.OpenMode == config.OpenHeld, Seed: h.Sum64(), Clock: clk}
}

// SimSocket is the unix socket, in the state directory, on which anprd
// serves the control protocol of its simulated barriers (gate/sim): the
// demo drives its cars onto their loops through it.
func SimSocket(stateDir string) string { return filepath.Join(stateDir, "sim.sock") }

// SimControl listens on SimSocket(stateDir) for the simulated barriers
// among lanes (by lane id) and returns the server for the caller to run;
// nil and no error when no lane is simulated. A socket left by an anprd
// that died is replaced: the caller holds the state directory's lock.
func SimControl(stateDir string, lanes map[string]*Built) (func(context.Context) error, error) {
	sims := map[string]*sim.Barrier{}
	for id, b := range lanes {
		if b != nil && b.Sim != nil {
			sims[id] = b.Sim
		}
	}
	if len(sims) == 0 {
		return nil, nil
	}
	path := SimSocket(stateDir)
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == fs.ModeSocket {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("simulated barriers: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("simulated barriers: %w", err)
	}
	return func(ctx context.Context) error { return sim.Serve(ctx, ln, sims) }, nil
}
