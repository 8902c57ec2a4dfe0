package daemon

import (
	"anprd/internal/access"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"anprd/internal/buildinfo"
	"anprd/internal/config"
	"anprd/internal/evidence"
	"anprd/internal/health"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/presence"
	"anprd/sync/ack"
	"anprd/sync/command"
	"anprd/sync/homeassistant"
	"anprd/sync/mqtt"
	"anprd/sync/outbox"
	"anprd/sync/permitsync"
	"anprd/sync/presencesync"
	"anprd/sync/protocol"
	"anprd/sync/telemetry"
	"anprd/sync/uplink"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// link is the box's connection to the central system: the outbox the
// lanes hand passages to, and everything that talks over the broker.
type link struct {
	client  *mqtt.Client
	outbox  *outbox.Outbox
	up      *uplink.Uplink
	sync    *permitsync.Sync
	peers   *presencesync.Peers
	cmds    *command.Handler
	tel     *telemetry.Telemetry
	acks    *ack.Handler
	ha      *homeassistant.Discovery
	sink    *recorder // the outbox, as the lanes and commands record passages
	keyless bool

	comp     *health.Component // "uplink"
	syncComp *health.Component // "permit-sync"
}

// Inbound queue bounds per subscription: a snapshot chunk is at most
// protocol.MaxPayload, and a few may wait while one loads.
const (
	syncQueueBytes  = 16 * protocol.MaxPayload
	smallQueueBytes = 2 * protocol.MaxPayload
)

// buildLink opens the outbox in the state database and builds the broker
// connection with its parts. Nothing connects until Run.
func (d *Daemon) buildLink(cfg *config.Config, reg prometheus.Registerer, started time.Time) error {
	m := cfg.MQTT
	topics := protocol.Topics{Prefix: m.TopicPrefix, Site: cfg.Site.ID, Device: cfg.Site.Device}
	log := d.log.With().Str("component", "uplink").Logger()
	l := &link{comp: d.health.Register("uplink"), syncComp: d.health.Register("permit-sync")}

	policy := outbox.DropOldest
	if m.OutboxWhenFull == config.OutboxRefuseNew {
		policy = outbox.RefuseNew
	}
	evidenceOn := m.Evidence == nil || *m.Evidence
	ob, err := outbox.Open(d.db.DB, outbox.Options{Max: m.OutboxMaxPassages, Policy: policy, Evidence: evidenceOn,
		Metrics: outbox.NewMetrics(reg),
		// The lanes' journal lets go of a passage as the outbox keeps it.
		Kept: access.Forget,
		OnDrop: func(id passage.ID, p outbox.Policy) {
			what := "the oldest waiting passage gave way"
			if p == outbox.RefuseNew {
				what = "the new passage was refused"
			}
			log.Error().Str("passage", id.String()).Int("max", m.OutboxMaxPassages).Msg("outbox full: " + what + "; it will not be uploaded")
		}})
	if err != nil {
		return err
	}
	ob.RegisterGauges(reg, d.o.Now)
	l.outbox = ob
	l.sink = &recorder{ob: ob, m: d.metrics, page: d.page}

	var key ed25519.PublicKey
	if m.CentralKeyFile != "" {
		b, err := os.ReadFile(m.CentralKeyFile)
		if err != nil {
			return fmt.Errorf("mqtt.central_key_file: %w", err)
		}
		if key, err = protocol.ParsePublicKey(b); err != nil {
			return fmt.Errorf("mqtt.central_key_file %s: %w", m.CentralKeyFile, err)
		}
	} else {
		l.keyless = true
		log.Warn().Msg("no mqtt.central_key_file: permit data and commands from the central system will be refused")
	}

	mo := mqtt.Options{Broker: m.Broker, ClientID: m.ClientID, Username: m.Username, Keepalive: time.Duration(m.Keepalive),
		Log: log, Metrics: mqtt.NewMetrics(reg), Now: d.o.Now}
	if m.PasswordFile != "" {
		if mo.Password, err = mqtt.ReadPassword(m.PasswordFile); err != nil {
			return err
		}
	}
	if u, err := url.Parse(m.Broker); err == nil && slices.Contains([]string{"ssl", "tls", "mqtts", "wss"}, u.Scheme) {
		if mo.TLS, err = mqtt.TLSConfig(m.CAFile, m.CertFile, m.KeyFile); err != nil {
			return err
		}
	}
	wt, wp := telemetry.Will(topics)
	mo.Will = &mqtt.Message{Topic: wt, QoS: protocol.QoSAtLeastOnce, Retain: true, Payload: wp}
	c, err := mqtt.New(mo)
	if err != nil {
		return err
	}
	l.client = c

	var images uplink.Images
	if evidenceOn && d.evidence != nil {
		images = d.evidence
	}
	l.up = uplink.New(ob, c, uplink.Options{Topics: topics, Images: images, EvidenceMaxAge: time.Duration(cfg.Retention.Evidence),
		Keep: ob.Held, Now: d.o.Now, Log: log, Metrics: uplink.NewMetrics(reg)})

	l.sync = permitsync.New(d.permits, c, permitsync.Options{Topics: topics, Key: key, Now: d.o.Now,
		Log: d.log.With().Str("component", "permit-sync").Logger(), Metrics: permitsync.NewMetrics(reg)})
	c.Subscribe("sync", protocol.QoSAtLeastOnce, syncQueueBytes, func(r mqtt.Received) { l.sync.Handle(r.Topic, r.Payload) }, l.sync.Filters()...)

	l.peers = presencesync.New(d.presence, presencesync.Options{Topics: topics, Facility: cfg.Access.Facility,
		Log: d.log.With().Str("component", "presence-peers").Logger(), Metrics: presencesync.NewMetrics(reg)})
	c.Subscribe("presence", protocol.QoSAtLeastOnce, smallQueueBytes, func(r mqtt.Received) { l.peers.Handle(r.Topic, r.Payload) }, l.peers.Filter())

	lanes := make([]command.Lane, len(cfg.Lanes))
	for i, lc := range cfg.Lanes {
		lanes[i] = command.Lane{ID: lc.ID, Direction: lc.Direction}
	}
	l.cmds, err = command.New(d.db.DB, c, command.Options{Topics: topics, Key: key, MaxAge: time.Duration(m.CommandMaxAge),
		Lanes: lanes, Opener: d.opener(), IDs: d.ids, Recorder: l.sink, Resync: l.sync,
		Ping: func() (uint64, int) {
			seq, _ := d.permits.Seq()
			st, _ := ob.Stats()
			return seq, st.Passages
		},
		Now: d.o.Now, Log: d.log.With().Str("component", "commands").Logger(), Metrics: command.NewMetrics(reg)})
	if err != nil {
		return err
	}
	cmdCtx, cancelCmds := context.WithCancel(context.Background())
	d.cancelCmds = cancelCmds
	c.Subscribe("commands", protocol.QoSAtLeastOnce, smallQueueBytes, func(r mqtt.Received) { l.cmds.Handle(cmdCtx, r.Topic, r.Payload) }, l.cmds.Filter())

	l.acks = ack.New(ob, ack.Options{Topics: topics, Key: key, Now: d.o.Now,
		Log: d.log.With().Str("component", "acks").Logger(), Metrics: ack.NewMetrics(reg)})
	c.Subscribe("acks", protocol.QoSAtLeastOnce, smallQueueBytes, func(r mqtt.Received) { l.acks.Handle(r.Topic, r.Payload) }, l.acks.Filter())

	l.tel = telemetry.New(c, telemetry.Options{Topics: topics, Version: buildinfo.Get().Version, ConfigDigest: cfg.Digest, Started: started,
		Interval: time.Duration(m.Heartbeat), Health: d.health, Outbox: ob.Stats, Sync: l.sync.State,
		Connects: func() uint64 { return c.Status().Connects }, Now: d.o.Now, Log: log, Metrics: telemetry.NewMetrics(reg)})

	// After every connection: send what waits, say we are online, and ask
	// for the permit data that follows ours.
	c.OnConnect(l.up.Connected)
	c.OnConnect(l.tel.Connected)
	c.OnConnect(l.sync.Connected)

	// Home Assistant discovery (after the online status, which is the
	// entities' availability). Built also when off, to remove what an
	// earlier run published.
	var haLanes []homeassistant.Lane
	for _, lc := range cfg.Lanes {
		haLanes = append(haLanes, homeassistant.Lane{ID: lc.ID, Name: lc.Name, Direction: lc.Direction, Barrier: lc.Mode != config.ModeFreeFlow})
	}
	l.ha = homeassistant.New(c, homeassistant.Options{Enabled: m.HomeAssistant.Enabled, Prefix: m.HomeAssistant.DiscoveryPrefix,
		Topics: topics, Lanes: haLanes, SiteName: cfg.Site.Name, Version: buildinfo.Get().Version,
		StateFile: homeassistant.StateFileIn(d.db.Dir()), Log: d.log.With().Str("component", "homeassistant").Logger(),
		Metrics: homeassistant.NewMetrics(reg)})
	l.sink.ha = l.ha
	c.OnConnect(l.ha.Connected)

	d.add(stageUplink, "uplink", l.up.Run)
	d.add(stageUplink, "permit-sync", l.sync.Run)
	d.add(stageUplink, "telemetry", l.tel.Run)
	d.add(stageBroker, "broker", func(ctx context.Context) error { return c.Run(ctx, l.tel.Offline) })
	d.add(stageHousekeeping, "passage-retention", func(ctx context.Context) error {
		return d.sweepPassages(ctx, time.Duration(cfg.Retention.Passages))
	})
	d.add(stageHousekeeping, "retention", func(ctx context.Context) error {
		return d.retain(ctx, time.Duration(cfg.Retention.Evidence))
	})
	d.link = l
	d.linkRound()
	return nil
}

// linkRound reports the uplink's and the permit sync's health. The box
// decides and opens barriers without the broker, so neither holds
// readiness back; they show degraded instead.
func (d *Daemon) linkRound() {
	l := d.link
	if l == nil {
		return
	}
	now := d.o.Now()
	st, err := l.outbox.Stats()
	if err != nil {
		l.comp.Set(health.Failed, false, "outbox: "+err.Error())
		return
	}
	backlog := fmt.Sprintf("outbox %d passages (%d messages)", st.Passages, st.Entries)
	if !st.Oldest.IsZero() {
		backlog += fmt.Sprintf(", oldest %s old", now.Sub(st.Oldest).Round(time.Second))
	}
	cs := l.client.Status()
	switch {
	case st.Dropped > 0 || st.Full():
		l.comp.Set(health.Degraded, true, fmt.Sprintf("outbox full (%d of %d): %d passages given up since start; %s", st.Passages, st.Max, st.Dropped, backlog))
	case !cs.Connected:
		why := cs.LastError
		if why == "" {
			why = "connecting"
		}
		l.comp.Set(health.Degraded, true, "broker not connected: "+why+"; "+backlog)
	default:
		l.comp.Set(health.OK, true, fmt.Sprintf("connected since %s; %s", cs.Since.Format(time.DateTime), backlog))
	}

	ss := l.sync.State()
	switch {
	case l.keyless:
		l.syncComp.Set(health.Degraded, true, fmt.Sprintf("no central key (mqtt.central_key_file): permit data and commands are refused; seq %d", ss.Seq))
	case ss.Loading != nil:
		l.syncComp.Set(health.OK, true, fmt.Sprintf("seq %d; loading snapshot %s (seq %d): %d of %d chunks", ss.Seq, ss.Loading.Snapshot, ss.Loading.Seq, ss.Loading.Received, ss.Loading.Chunks))
	case ss.Waiting != "":
		l.syncComp.Set(health.Degraded, true, fmt.Sprintf("seq %d; resync requested (%s), not yet answered", ss.Seq, ss.Waiting))
	default:
		l.syncComp.Set(health.OK, true, fmt.Sprintf("seq %d", ss.Seq))
	}
}

// sweepPassages deletes the local copies of uploaded passages past
// retention.passages, at start and then hourly.
func (d *Daemon) sweepPassages(ctx context.Context, keep time.Duration) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := d.link.outbox.Sweep(d.o.Now(), keep)
		if err != nil {
			d.log.Warn().Err(err).Msg("passage sweep incomplete")
		}
		if n > 0 {
			d.log.Info().Int("deleted", n).Dur("older_than", keep).Msg("uploaded passages past retention deleted")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// retain runs the retention of evidence and plates (outbox.Retain) at
// start and then hourly: delivered passages that need no follow-up, or
// were acknowledged, lose their images and plate after maxAge, and images
// of no passage go too.
func (d *Daemon) retain(ctx context.Context, maxAge time.Duration) error {
	var files outbox.Files = noFiles{}
	if d.evidence != nil {
		files = d.evidence
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		res, err := d.link.outbox.Retain(d.o.Now(), maxAge, files)
		if err != nil {
			d.log.Warn().Err(err).Msg("retention round incomplete; the next one tries again")
		}
		if res.Redacted > 0 || res.Files > 0 {
			d.log.Info().Int("passages", res.Redacted).Int("files", res.Files).Int("held", res.Held).Dur("older_than", maxAge).
				Msg("evidence and plates past retention deleted")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// noFiles stands in for the evidence store when it could not be opened:
// there are no images to delete, but plates still go.
type noFiles struct{}

func (noFiles) Remove(string) error { return nil }
func (noFiles) SweepKeeping(time.Time, time.Duration, func(string) bool) (int, error) {
	return 0, nil
}

// recorder is the outbox as the lanes and the command handler record
// passages: once a passage is committed it is counted by classification
// and shown on the technicians' page and in Home Assistant.
type recorder struct {
	ob   *outbox.Outbox
	m    *metrics
	page *pageData
	ha   *homeassistant.Discovery
}

func (r *recorder) Record(p passage.Passage) error {
	if err := r.ob.Record(p); err != nil {
		return err
	}
	class, action := "manual", "manual"
	if p.Decision != nil {
		class, action = string(p.Decision.Class), string(p.Decision.Action)
	}
	r.m.passages.WithLabelValues(p.Lane, class, action).Inc()
	r.page.addPassage(p)
	if r.ha != nil {
		r.ha.Passage(&p)
	}
	return nil
}

// openEvidence opens the evidence store in the state directory, for the
// lanes and the uplink.
func openEvidence(dir string) (*evidence.Store, error) {
	return evidence.New(filepath.Join(dir, "evidence"))
}

// openData opens the permit and presence stores in the state database.
func (d *Daemon) openData() error {
	var err error
	if d.permits, err = permit.Open(d.db.DB); err != nil {
		return err
	}
	logConversion(d.log.With().Str("component", "permits").Logger(), d.permits.Converted())
	d.presence, err = presence.Open(d.db.DB)
	return err
}

// logConversion says in one line what permit.Open did with permit data
// an older anprd wrote: converted it, or dropped it for a resync.
func logConversion(log zerolog.Logger, c permit.Conversion) {
	switch {
	case c.From == 0:
	case c.Dropped != "":
		log.Warn().Int("from_format", c.From).Str("why", c.Dropped).
			Msg("permit data of an older format dropped: no permits until sync has loaded the central system's snapshot (resync)")
	default:
		log.Info().Int("from_format", c.From).Int("records", c.Records).Msg("permit data converted from an older format")
	}
}

// Outbox is where passages go: the lanes' passage sink (Record commits to
// disk before it returns and never waits for the network).
func (d *Daemon) Outbox() *outbox.Outbox { return d.link.outbox }

// IDs makes passage ids; the lanes and remote commands share it so the
// box's ids stay in order.
func (d *Daemon) IDs() *passage.Generator { return d.ids }

// Events takes state changes of lanes, cameras and barriers for the
// central system; it never blocks.
func (d *Daemon) Events() *telemetry.Telemetry { return d.link.tel }
