// Package daemon is the one place where anprd's components are built and
// wired together, and where their lives are run: start-up, readiness,
// the main loop, the systemd watchdog and an ordered shutdown. It holds no
// product logic; every component it runs lives in its own package.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"anprd/camera/ocr"
	"anprd/camera/onnx"
	"anprd/camera/source"
	"anprd/internal/buildinfo"
	"anprd/internal/config"
	"anprd/internal/evidence"
	"anprd/internal/health"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/presence"
	"anprd/internal/state"
	"anprd/internal/status"
	"anprd/sync/command"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Options are what the caller decides; the rest comes from the config.
type Options struct {
	Config *config.Config
	Log    zerolog.Logger
	// Notifier defaults to Systemd.
	Notifier Notifier
	// Now defaults to time.Now.
	Now func() time.Time
	// Watchdog is systemd's WATCHDOG_USEC; zero turns the watchdog off.
	Watchdog time.Duration
	// Tick is the main loop's period; default one second.
	Tick time.Duration
	// ReaderCheck loads the plate reader's runtime and checks its models,
	// returning a line for the status page; default CheckReader.
	ReaderCheck func(config.Reader) (string, error)
	// ShutdownTimeout bounds the whole ordered shutdown; default 9 s, so
	// that anprd is gone within systemd's and the 10 s.
	ShutdownTimeout time.Duration
	// Opener opens a lane's barrier for a remote command (the lanes'
	// barrier control). Nil: remote openings are answered "failed: no
	// barrier control running".
	Opener command.Opener
}

// Daemon is a built, not yet running, anprd.
type Daemon struct {
	o        Options
	log      zerolog.Logger
	db       *state.DB
	health   *health.Registry
	dbComp   *health.Component
	loopComp *health.Component
	beat     *health.Heartbeat
	metrics  *metrics
	promReg  *prometheus.Registry
	status   *status.Server
	parts    [numStages][]part
	lanes    []*lane
	models   *ocr.Models // the plate reader's sessions, shared by the lanes
	gates    map[string]*gateLane
	evidence *evidence.Store

	permits    *permit.Store
	presence   *presence.Store
	ids        *passage.Generator // passage ids, shared by lanes and commands
	link       *link
	cancelCmds context.CancelFunc
	laneStates map[string]health.State // last camera state reported per lane
	page       *pageData               // what the technicians' page keeps
}

// Shutdown stages, in the order they are stopped: stop taking frames,
// finish the passage in hand, flush what can be flushed while the broker
// connection is still up, close the connection (publishing the offline
// status), then the housekeeping that lets a technician watch all this
// happen. The database is closed after every stage has stopped.
const (
	stageFrames = iota
	stageLanes
	stageUplink
	stageBroker
	stageHousekeeping
	numStages
)

var stageNames = [numStages]string{"frames", "lanes", "uplink", "broker", "housekeeping"}

// part is one long-running component.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// New builds the daemon: it locks and opens the state database and binds
// the status listener, so that every start-up problem is reported here,
// before anything runs.
func New(o Options) (*Daemon, error) {
	if o.Notifier == nil {
		o.Notifier = Systemd{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
		if o.Watchdog > 0 {
			// The loop must beat several times per watchdog period.
			o.Tick = min(o.Tick, o.Watchdog/4)
		}
	}
	if o.ReaderCheck == nil {
		o.ReaderCheck = CheckReader
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 9 * time.Second
	}
	cfg := o.Config
	d := &Daemon{
		o:          o,
		log:        o.Log,
		health:     health.NewRegistry(o.Now),
		beat:       new(health.Heartbeat),
		ids:        new(passage.Generator),
		laneStates: map[string]health.State{},
		page:       newPageData(),
	}
	started := o.Now()

	db, err := state.Open(cfg.State.Dir, state.Migrations)
	if err != nil {
		return nil, err
	}
	d.db = db
	d.dbComp = d.health.Register("database")
	d.dbComp.Set(health.OK, true, fmt.Sprintf("schema %d", db.Schema()))
	d.loopComp = d.health.Register("main-loop")
	ln, err := status.Listen(cfg.Status.Listen)
	if err != nil {
		db.Close()
		return nil, err
	}

	d.promReg = prometheus.NewRegistry()
	d.metrics = newMetrics(d.promReg, d.health, d.beat, o.Now, db, cfg.Site.ID, cfg.Site.Device, cfg.Digest)

	if store, err := openEvidence(cfg.State.Dir); err != nil {
		// Reads and uploads go on without pictures; the log says why.
		d.log.Error().Err(err).Msg("evidence images will not be kept")
	} else {
		d.evidence = store
	}
	if err := d.openData(); err != nil {
		ln.Close()
		db.Close()
		return nil, err
	}
	if err := d.buildLink(cfg, d.promReg, started); err != nil {
		ln.Close()
		db.Close()
		return nil, err
	}

	if err := d.buildGates(cfg, d.promReg); err != nil {
		ln.Close()
		db.Close()
		return nil, err
	}
	if len(cfg.Lanes) > 0 {
		// A reader that cannot load keeps the daemon up but not ready: the
		// technician sees why on the status page instead of a restart loop.
		rc := d.health.Register("reader")
		if detail, err := o.ReaderCheck(cfg.Reader); err != nil {
			rc.Set(health.Failed, false, err.Error())
			d.log.Error().Err(err).Msg("plate reader runtime unusable; lanes not started")
		} else {
			rc.Set(health.OK, true, detail)
			d.buildLanes(cfg, d.promReg)
		}
	}

	h, err := d.statusHandler(cfg, status.Static{
		Site: status.Site{
			ID: cfg.Site.ID, Device: cfg.Site.Device, Name: cfg.Site.Name, TimeZone: cfg.Site.TimeZone,
		},
		Config:   status.ConfigRef{Path: cfg.Path, Digest: cfg.Digest},
		Lanes:    laneInfo(cfg.Lanes),
		StateDir: db.Dir(),
		Schema:   db.Schema(),
		Build:    buildinfo.Get(),
		Started:  started,
	})
	if err != nil {
		if d.cancelCmds != nil {
			d.cancelCmds()
		}
		ln.Close()
		d.closeLanes()
		db.Close()
		return nil, err
	}
	d.status = status.NewServer(ln, h, d.health.Register("status"), d.log.With().Str("component", "status").Logger())

	d.add(stageHousekeeping, "status", d.status.Run)
	d.add(stageHousekeeping, "main-loop", d.mainLoop)
	if o.Watchdog > 0 {
		w := &watchdog{
			period: o.Watchdog / 2,
			maxAge: min(5*o.Tick, o.Watchdog/2),
			beat:   d.beat,
			notify: o.Notifier,
			now:    o.Now,
			log:    d.log.With().Str("component", "watchdog").Logger(),
			m:      d.metrics,
		}
		d.add(stageHousekeeping, "watchdog", w.Run)
	}
	return d, nil
}

// CheckReader loads ONNX Runtime and checks the models.
func CheckReader(r config.Reader) (string, error) {
	v, err := onnx.Load(r.ONNXRuntimeLibrary)
	if err != nil {
		return "", err
	}
	m, err := onnx.CheckModels(r.ModelsDir)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("ONNX Runtime %s loaded; models in %s checked (PP-OCRv4 %d classes, plate recogniser %d)", v, m.Dir, m.Classes, m.PlateClasses), nil
}

func laneInfo(lanes []config.Lane) []status.Lane {
	out := make([]status.Lane, len(lanes))
	for i, l := range lanes {
		out[i] = status.Lane{ID: l.ID, Name: l.Name, Direction: l.Direction, Mode: l.Mode, Camera: source.Redact(l.Camera.Source)}
	}
	return out
}

func (d *Daemon) add(stage int, name string, run func(context.Context) error) {
	d.parts[stage] = append(d.parts[stage], part{name: name, run: run})
}

// StatusAddr is the address the status endpoint listens on.
func (d *Daemon) StatusAddr() string { return d.status.Addr() }

// Registry is the daemon's metrics registry.
func (d *Daemon) Registry() *prometheus.Registry { return d.promReg }

// Run runs every part until ctx ends or a part fails, then shuts down in
// stage order and closes the database last. Cancellation of ctx is a
// normal stop and returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	type running struct {
		name   string
		cancel context.CancelFunc
		done   chan struct{}
	}
	var stages [numStages][]running
	for s, parts := range d.parts {
		for _, p := range parts {
			// Parts do not derive from gctx: they stop when their stage
			// is told to, not all at once.
			pctx, cancel := context.WithCancel(context.Background())
			r := running{name: p.name, cancel: cancel, done: make(chan struct{})}
			stages[s] = append(stages[s], r)
			g.Go(func() error {
				defer close(r.done)
				err := p.run(pctx)
				if err != nil && !errors.Is(err, context.Canceled) {
					return fmt.Errorf("%s: %w", p.name, err)
				}
				if pctx.Err() == nil {
					return fmt.Errorf("%s: stopped on its own", p.name)
				}
				return nil
			})
		}
	}

	if err := d.o.Notifier.Notify(daemon.SdNotifyReady); err != nil {
		d.log.Warn().Err(err).Msg("sd_notify READY failed")
	}
	d.log.Info().Str("status", d.StatusAddr()).Int("lanes", len(d.o.Config.Lanes)).
		Str("version", buildinfo.Get().Version).Msg("anprd running")

	<-gctx.Done()
	why := "signal"
	if ctx.Err() == nil {
		why = "component failure"
	}
	d.log.Info().Str("reason", why).Msg("shutting down")
	d.o.Notifier.Notify(daemon.SdNotifyStopping)

	deadline := time.NewTimer(d.o.ShutdownTimeout)
	defer deadline.Stop()
	for s := range stages {
		for _, r := range stages[s] {
			r.cancel()
		}
		for _, r := range stages[s] {
			select {
			case <-r.done:
			case <-deadline.C:
				// A part that ignores cancellation must not keep the
				// box from restarting. The database stays open: bbolt
				// is safe to abandon, and closing it under a running
				// transaction would block.
				var pending []string
				for _, rs := range stages[s:] {
					for _, r := range rs {
						select {
						case <-r.done:
						default:
							pending = append(pending, r.name)
						}
					}
				}
				return fmt.Errorf("shutdown: stage %s did not stop within %v; still running: %s",
					stageNames[s], d.o.ShutdownTimeout, strings.Join(pending, ", "))
			}
		}
	}
	err := g.Wait()
	if d.cancelCmds != nil {
		d.cancelCmds()
	}
	d.closeLanes()
	if cerr := d.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("state: close: %w", cerr)
	}
	if err == nil {
		d.log.Info().Msg("stopped")
	}
	return err
}

// Close releases what New acquired, for a daemon that will not Run.
func (d *Daemon) Close() error {
	if d.cancelCmds != nil {
		d.cancelCmds()
	}
	d.status.Close()
	d.closeLanes()
	return d.db.Close()
}

// mainLoop is the daemon's heartbeat: each round it checks that the
// database answers and records a beat. The watchdog only pings systemd
// while these beats keep coming, so anything that wedges this loop (a
// hung disk, a deadlock) gets the daemon restarted.
func (d *Daemon) mainLoop(ctx context.Context) error {
	t := time.NewTicker(d.o.Tick)
	defer t.Stop()
	d.round()
	d.loopComp.Set(health.OK, true, "")
	for {
		select {
		case <-ctx.Done():
			d.loopComp.Set(health.Stopped, false, "")
			return nil
		case <-t.C:
			d.round()
		}
	}
}

func (d *Daemon) round() {
	if err := d.db.Check(); err != nil {
		d.dbComp.Set(health.Failed, false, err.Error())
	} else {
		d.dbComp.Set(health.OK, true, fmt.Sprintf("schema %d", d.db.Schema()))
	}
	d.laneRound(d.o.Now())
	d.linkRound()
	d.metrics.loopIterations.Inc()
	d.beat.Beat(d.o.Now())
}
