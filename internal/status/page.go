package status

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"time"

	"anprd/internal/health"
	"anprd/internal/passage"
	"anprd/internal/presence"
)

// Source gives the page the daemon's live state. Snapshot is called on
// every refresh (each client, every two seconds), so it must be cheap and
// must not block on a lane or the broker.
type Source interface {
	Snapshot() Snapshot
}

// Images reads evidence images by the path the evidence store gave;
// *evidence.Store is one.
type Images interface {
	ReadImage(rel string) ([]byte, error)
}

// Snapshot is what the page shows, read at one moment.
type Snapshot struct {
	Lanes    []LaneView
	Passages []passage.Passage // the most recent, newest first
	Uplink   UplinkView
	Sync     SyncView
	Presence PresenceView
}

// LaneView is one lane's live state.
type LaneView struct {
	ID, Name, Direction, Mode string
	Barrier                   *BarrierView // nil at a free-flow lane
	Camera                    *CameraView  // nil when the lane's camera is not running
	Reads                     []ReadView   // the last read events, newest first
}

// BarrierView is a barrier as its state machine and inputs show it.
type BarrierView struct {
	State     string // closed, opening, open, closing, fault, unknown
	Fault     string // the fault's cause in state fault
	Arming    Loop
	Safety    Loop
	Alarm     bool // the safety loop has been occupied too long
	Simulated bool
}

// Loop is an induction loop: wired at this lane, and occupied now.
type Loop struct {
	Wired, Occupied bool
}

// CameraView is the lane's camera stream.
type CameraView struct {
	Connected                 bool
	FPS                       float64
	LastFrame                 time.Time
	Frames, Drops, Reconnects uint64
	Error                     string
}

// ReadView is one vehicle's read event and, once the lane decided on it,
// the decision.
type ReadView struct {
	Time       time.Time
	Plate      string
	Conf       float32
	Country    string
	Final      bool // the tracker's last word on the vehicle (early reads come first)
	Suppressed bool // a repeat of a plate just read: not acted on
	Crop       string
	Decision   *passage.Decision
	Gate       *passage.Gate
}

// UplinkView is the broker connection and the outbox.
type UplinkView struct {
	Connected bool
	Since     time.Time
	Error     string // the last connection error
	Passages  int    // waiting for upload
	Messages  int
	Oldest    time.Time
	Dropped   uint64 // given up since start because the outbox was full
	Max       int
	Err       string // the outbox could not be read
}

// SyncView is the permit data's state.
type SyncView struct {
	Seq     uint64
	Loading string // a snapshot being loaded, with its progress
	Waiting string // a resync asked for and not yet answered
	Keyless bool   // no central key: permit data is refused
}

// PresenceView is who is inside.
type PresenceView struct {
	Facility string
	Count    int
	Vehicles []presence.Vehicle // the newest first, at most a page's worth
	Err      string
}

//go:embed page.html
var pageHTML string

//go:embed page.css
var pageCSS string

//go:embed page.js
var pageJS string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"pct": func(c float32) string { return fmt.Sprintf("%.0f%%", 100*c) },
}).Parse(pageHTML))

// csp allows the page's own inline style and script (by hash) and
// nothing from elsewhere: the box is offline, and an injected script or
// frame must not run the actions.
var csp = fmt.Sprintf("default-src 'none'; img-src 'self'; connect-src 'self'; form-action 'self'; "+
	"frame-ancestors 'none'; base-uri 'none'; style-src '%s'; script-src '%s'", hash(pageCSS), hash(pageJS))

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(h[:])
}

type page struct {
	c Config
}

func newPage(c Config) *page { return &page{c: c} }

// view is the template's data.
type view struct {
	Site      Site
	Version   string
	Now       string
	Uptime    string
	Ready     bool
	Faults    []string
	Comps     []health.Status
	Lanes     []laneRow
	Passages  []passageRow
	Uplink    UplinkView
	Oldest    string
	Sync      SyncView
	Presence  PresenceView
	Inside    []insideRow
	Audit     []auditRow
	AuditErr  string
	ActionsOn bool
	Openable  []LaneView // barrier lanes, for the open form
	Style     template.CSS
	Script    template.JS
}

type laneRow struct {
	LaneView
	LastFrame string // age of the last frame
	Reads     []readRow
}

type readRow struct {
	ReadView
	Clock string
	Img   string // URL of the crop, "" for none
}

type passageRow struct {
	passage.Passage
	Clock   string
	Latency string
}

type insideRow struct {
	presence.Vehicle
	Clock string
}

type auditRow struct {
	AuditEntry
	Clock string
}

func (p *page) view() view {
	c := p.c
	now := c.Now()
	ready, _ := c.Health.Ready()
	comps := c.Health.Snapshot()
	snap := c.Source.Snapshot()
	v := view{
		Site: c.Static.Site, Version: c.Static.Build.Version, Ready: ready, Comps: comps,
		Now:    now.In(c.Location).Format("2006-01-02 15:04:05 MST"),
		Uptime: now.Sub(c.Static.Started).Round(time.Second).String(),
		Faults: faults(snap, comps), Uplink: snap.Uplink, Sync: snap.Sync, Presence: snap.Presence,
		ActionsOn: c.Actions != nil && c.Token != "",
		Style:     template.CSS(pageCSS), Script: template.JS(pageJS),
	}
	if !snap.Uplink.Oldest.IsZero() {
		v.Oldest = now.Sub(snap.Uplink.Oldest).Round(time.Second).String()
	}
	for _, l := range snap.Lanes {
		r := laneRow{LaneView: l}
		if l.Camera != nil && !l.Camera.LastFrame.IsZero() {
			r.LastFrame = now.Sub(l.Camera.LastFrame).Round(100 * time.Millisecond).String()
		}
		for _, rd := range l.Reads {
			rr := readRow{ReadView: rd, Clock: p.clock(rd.Time)}
			if c.Images != nil && evidencePath.MatchString(rd.Crop) {
				rr.Img = "/evidence/" + rd.Crop
			}
			r.Reads = append(r.Reads, rr)
		}
		v.Lanes = append(v.Lanes, r)
		if l.Barrier != nil {
			v.Openable = append(v.Openable, l)
		}
	}
	for _, ps := range snap.Passages {
		pr := passageRow{Passage: ps, Clock: p.clock(ps.Time)}
		t := ps.Timings
		if !t.Trigger.IsZero() && !t.Command.IsZero() && !t.Command.Before(t.Trigger) {
			pr.Latency = t.Command.Sub(t.Trigger).Round(time.Millisecond).String()
		}
		v.Passages = append(v.Passages, pr)
	}
	for _, in := range snap.Presence.Vehicles {
		v.Inside = append(v.Inside, insideRow{Vehicle: in, Clock: in.Entered.In(c.Location).Format("01-02 15:04")})
	}
	if c.Audit != nil {
		entries, err := c.Audit.Recent(10)
		if err != nil {
			v.AuditErr = err.Error()
		}
		for _, e := range entries {
			v.Audit = append(v.Audit, auditRow{AuditEntry: e, Clock: p.clock(e.Time)})
		}
	}
	return v
}

func (p *page) clock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(p.c.Location).Format("15:04:05")
}

// faults are what needs a technician: a barrier in fault, a safety loop
// alarm, and every component not ok (a camera not delivering, the
// broker away, the outbox full, the reader not loaded, ...).
func faults(s Snapshot, comps []health.Status) []string {
	var out []string
	for _, l := range s.Lanes {
		if b := l.Barrier; b != nil {
			if b.State == "fault" {
				out = append(out, fmt.Sprintf("lane %s: barrier in fault: %s", l.ID, b.Fault))
			}
			if b.Alarm {
				out = append(out, fmt.Sprintf("lane %s: a vehicle has stood on the safety loop for over a minute; the barrier stays up", l.ID))
			}
		}
	}
	for _, c := range comps {
		if c.State != health.OK {
			out = append(out, fmt.Sprintf("%s: %s: %s", c.Name, c.State, c.Detail))
		}
	}
	if s.Presence.Err != "" {
		out = append(out, "presence: "+s.Presence.Err)
	}
	return out
}

func (p *page) render(w http.ResponseWriter, name string) {
	var buf bytes.Buffer
	if err := pageTmpl.ExecuteTemplate(&buf, name, p.view()); err != nil {
		p.c.Log.Error().Err(err).Msg("status page")
		http.Error(w, "page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.Write(buf.Bytes())
}

// serveFull is the whole page; serveLive the part that refreshes.
func (p *page) serveFull(w http.ResponseWriter, r *http.Request) { p.render(w, "page") }
func (p *page) serveLive(w http.ResponseWriter, r *http.Request) { p.render(w, "live") }

// evidencePath is the only shape of path the image route serves: what
// evidence.Store.Save makes (DAY/TIME-LANE-ID-plate.jpg, -scene.jpg).
// Anything else, a "..", a second slash, an absolute path, is not found
// before the store is asked.
var evidencePath = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}/[0-9]{6}\.[0-9]{3}-[A-Za-z0-9_-]{1,64}-[0-9]{1,20}-(plate|scene)\.jpg$`)

func (p *page) serveImage(w http.ResponseWriter, r *http.Request) {
	rel := r.PathValue("path")
	if p.c.Images == nil || !evidencePath.MatchString(rel) {
		p.c.Metrics.refused.WithLabelValues("image_path").Inc()
		http.NotFound(w, r)
		return
	}
	b, err := p.c.Images.ReadImage(rel)
	if err != nil {
		// Deleted by retention, most likely.
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("X-Content-Type-Options", "nosniff")
	// An evidence file never changes under its name; private: plates
	// are personal data, no shared cache keeps them.
	h.Set("Cache-Control", "private, max-age=3600")
	w.Write(b)
}
