package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"anprd/camera/track"
	"anprd/camera/watch"
	"anprd/gate"
	gatelane "anprd/gate/lane"
	"anprd/internal/config"
	"anprd/internal/passage"
	"anprd/internal/presence"
	"anprd/internal/status"
)

// What the technicians' page keeps in memory: the last read events of
// each lane and the passages recorded since anprd started (the outbox
// has them on disk; the page shows the latest as they go by).
const (
	pageReads    = 5
	pagePassages = 20
	pageInside   = 50
	// A read and its passage: the same plate, decided this close to
	// the read's last frame.
	readDecisionWindow = 2 * time.Minute
)

// pageData collects what the page shows that no part keeps for it.
type pageData struct {
	mu       sync.Mutex
	reads    map[string][]pageRead // lane -> newest first
	passages []passage.Passage     // newest first
}

type pageRead struct {
	track uint64
	view  status.ReadView
}

func newPageData() *pageData { return &pageData{reads: map[string][]pageRead{}} }

// addRead keeps a lane's read event; a track's later event (the final
// one, with the crop) replaces its early one.
func (p *pageData) addRead(lane string, ev watch.Event) {
	rv := status.ReadView{Time: ev.Last, Plate: ev.Plate, Conf: ev.Conf, Country: string(ev.Country),
		Final: ev.Kind == track.Final, Suppressed: ev.Suppressed, Crop: ev.PlateImage}
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.reads[lane]
	if ev.TrackID != 0 {
		rs = slices.DeleteFunc(rs, func(r pageRead) bool { return r.track == ev.TrackID })
	}
	rs = append([]pageRead{{track: ev.TrackID, view: rv}}, rs...)
	p.reads[lane] = rs[:min(len(rs), pageReads)]
}

func (p *pageData) addPassage(ps passage.Passage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.passages = append([]passage.Passage{ps}, p.passages...)
	p.passages = p.passages[:min(len(p.passages), pagePassages)]
}

// lane returns a lane's reads, each with its decision when a passage of
// the same plate was decided about then, and the recent passages.
func (p *pageData) lane(id string) []status.ReadView {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []status.ReadView
	for _, r := range p.reads[id] {
		v := r.view
		for i := range p.passages {
			ps := &p.passages[i]
			if ps.Lane == id && ps.Decision != nil && matches(ps, v) {
				v.Decision, v.Gate = ps.Decision, &ps.Gate
				break
			}
		}
		out = append(out, v)
	}
	return out
}

func matches(ps *passage.Passage, r status.ReadView) bool {
	if r.Crop != "" && ps.Evidence.Plate == r.Crop {
		return true
	}
	if ps.Read == nil || ps.Read.Plate == "" || ps.Read.Plate != r.Plate {
		return false
	}
	d := ps.Timings.Decided.Sub(r.Time)
	return d > -readDecisionWindow && d < readDecisionWindow
}

func (p *pageData) recent() []passage.Passage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.passages)
}

// pageSource reads the daemon's parts for the page. Every read is
// either a mutex-guarded copy or one bbolt read transaction: nothing
// waits for a lane's loop or the broker.
type pageSource struct{ d *Daemon }

func (s pageSource) Snapshot() status.Snapshot {
	d := s.d
	cfg := d.o.Config
	var snap status.Snapshot
	for _, lc := range cfg.Lanes {
		lv := status.LaneView{ID: lc.ID, Name: lc.Name, Direction: lc.Direction, Mode: lc.Mode, Reads: d.page.lane(lc.ID)}
		if g := d.gates[lc.ID]; g != nil && g.built != nil && g.built.Barrier != nil {
			b := g.built.Barrier
			st, fault := b.State()
			in := b.Inputs()
			lv.Barrier = &status.BarrierView{State: st.String(), Fault: fault, Alarm: in.Alarm, Simulated: g.built.Sim != nil,
				Arming: status.Loop{Wired: b.Has(gate.LineArming), Occupied: in.Active[gate.LineArming]},
				Safety: status.Loop{Wired: b.Has(gate.LineSafety), Occupied: in.Active[gate.LineSafety]}}
		}
		for _, l := range d.lanes {
			if l.id == lc.ID && l.src != nil {
				st := l.src.Stats()
				lv.Camera = &status.CameraView{Connected: st.Connected, FPS: st.FPS, LastFrame: st.LastFrame,
					Frames: st.Frames, Drops: st.Drops, Reconnects: st.Reconnects, Error: st.LastError}
			}
		}
		snap.Lanes = append(snap.Lanes, lv)
	}
	snap.Passages = d.page.recent()
	if l := d.link; l != nil {
		st, err := l.outbox.Stats()
		if err != nil {
			snap.Uplink.Err = err.Error()
		}
		cs := l.client.Status()
		snap.Uplink = status.UplinkView{Connected: cs.Connected, Since: cs.Since, Error: cs.LastError,
			Passages: st.Passages, Messages: st.Entries, Oldest: st.Oldest, Dropped: st.Dropped, Max: st.Max, Err: snap.Uplink.Err}
		ss := l.sync.State()
		snap.Sync = status.SyncView{Seq: ss.Seq, Waiting: ss.Waiting, Keyless: l.keyless}
		if ld := ss.Loading; ld != nil {
			snap.Sync.Loading = fmt.Sprintf("snapshot %s (seq %d): %d of %d chunks", ld.Snapshot, ld.Seq, ld.Received, ld.Chunks)
		}
	}
	snap.Presence.Facility = cfg.Access.Facility
	if vs, err := d.presence.List(cfg.Access.Facility); err != nil {
		snap.Presence.Err = err.Error()
	} else {
		snap.Presence.Count = len(vs)
		slices.SortFunc(vs, func(a, b *presence.Vehicle) int { return b.Entered.Compare(a.Entered) })
		for _, v := range vs[:min(len(vs), pageInside)] {
			snap.Presence.Vehicles = append(snap.Presence.Vehicles, *v)
		}
	}
	return snap
}

// pageActions are the page's actions on the daemon's parts.
type pageActions struct{ d *Daemon }

// OpenBarrier opens through the lane, as a remote command does: the
// lane records a manual passage (source page, operator, reason) in the
// outbox, which is the opening's audit, and gives it the vehicle that
// goes through.
func (a pageActions) OpenBarrier(ctx context.Context, lane string, m passage.ManualOpen) error {
	g := a.d.gates[lane]
	if g == nil || g.built == nil {
		return status.ErrUnknownLane
	}
	if g.built.Barrier == nil {
		return status.ErrNoBarrier
	}
	err := g.built.Lane.OpenManual(ctx, m)
	if errors.Is(err, gatelane.ErrNoBarrier) {
		return status.ErrNoBarrier
	}
	return err
}

// RemovePresence corrects the facility's presence: the vehicle left.
func (a pageActions) RemovePresence(plate string) (*presence.Vehicle, error) {
	return a.d.presence.Remove(a.d.o.Config.Access.Facility, plate)
}

// Resync asks the central system for the permit data again.
func (a pageActions) Resync(detail string) error {
	l := a.d.link
	switch {
	case l == nil:
		return errors.New("no uplink")
	case l.keyless:
		return errors.New("no central key (mqtt.central_key_file): the permit data would be refused")
	}
	l.sync.Resync(detail)
	return nil
}

// statusHandler builds the status listener's routes with the page, its
// actions (when status.action_token_file is set) and the audit log.
func (d *Daemon) statusHandler(cfg *config.Config, static status.Static) (http.Handler, error) {
	c := status.Config{
		Static: static, Health: d.health, Gatherer: d.promReg, Now: d.o.Now,
		Allow: cfg.Status.AllowNets, Source: pageSource{d}, Location: cfg.Site.Location,
		Log: d.log.With().Str("component", "status").Logger(), Metrics: status.NewMetrics(d.promReg),
	}
	if len(c.Allow) == 0 {
		// A config built in code rather than loaded (the tests): the
		// default networks, as Validate would have set.
		for _, s := range config.DefaultStatusAllow {
			c.Allow = append(c.Allow, netip.MustParsePrefix(s))
		}
	}
	if d.evidence != nil {
		c.Images = d.evidence
	}
	if f := cfg.Status.ActionTokenFile; f != "" {
		tok, err := config.ReadActionToken(f)
		if err != nil {
			return nil, fmt.Errorf("status.action_token_file: %w", err)
		}
		keep := time.Duration(cfg.Retention.Passages)
		if keep <= 0 {
			keep = 30 * 24 * time.Hour
		}
		audit, err := status.OpenAudit(d.db.DB, keep, d.o.Now)
		if err != nil {
			return nil, err
		}
		c.Actions, c.Token, c.Audit = pageActions{d}, tok, audit
	}
	if c.Actions == nil {
		c.Log.Info().Msg("status page actions are off: no status.action_token_file")
	}
	return status.Handler(c), nil
}
