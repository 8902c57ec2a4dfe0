// Package status serves the box's local status listener: liveness,
// readiness, Prometheus metrics and a JSON summary for the box's own
// tooling (anprctl), and the technicians' page — each lane's barrier,
// loops, camera and last reads with their plate crops, the recent
// passages, the outbox, the permit sync and the faults — which refreshes
// itself every two seconds and works on a phone.
//
// It reports what the daemon's parts say (the health registry, a Source
// of snapshots) and changes nothing but its own audit log. The page's
// three actions (open a barrier, remove a vehicle from presence, ask for
// a permit resync) go through an Actions the daemon gives, and only with
// the token from status.action_token_file, by POST, within a rate limit,
// and each is written to the audit log. Every route is refused to
// clients outside status.allow.
//
// This package must not import camera, GPIO or broker code, nor reach
// into the lanes: it sees them only through Source and Actions.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"anprd/internal/buildinfo"
	"anprd/internal/health"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Static is what does not change while the daemon runs.
type Static struct {
	Site     Site           `json:"site"`
	Config   ConfigRef      `json:"config"`
	Lanes    []Lane         `json:"lanes"`
	StateDir string         `json:"state_dir"`
	Schema   int            `json:"schema"`
	Build    buildinfo.Info `json:"build"`
	Started  time.Time      `json:"started"`
}

// Site names the box.
type Site struct {
	ID       string `json:"id"`
	Device   string `json:"device"`
	Name     string `json:"name,omitempty"`
	TimeZone string `json:"timezone"`
}

// Lane is a configured lane as a technician needs to see it.
type Lane struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Direction string `json:"direction"`
	Mode      string `json:"mode"`
	Camera    string `json:"camera"` // with any password removed (the caller redacts)
}

// ConfigRef says which configuration is in force.
type ConfigRef struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// Report is the /api/v1/status document.
type Report struct {
	Version       string          `json:"version"`
	UptimeSeconds float64         `json:"uptime_seconds"`
	Ready         bool            `json:"ready"`
	Components    []health.Status `json:"components"`
	Static
}

// Config is what the handler needs.
type Config struct {
	Static   Static
	Health   *health.Registry
	Gatherer prometheus.Gatherer
	Now      func() time.Time

	// Allow are the networks whose clients may use any route; others get
	// 403. Empty: every client (the tests of the plain endpoints).
	Allow []netip.Prefix
	// Source gives the page its live data; nil: no page (/ is 404).
	Source Source
	// Images reads the plate crops the page shows; nil: none are shown.
	Images Images
	// Location is the site's time zone, for the times on the page;
	// default UTC.
	Location *time.Location
	// Actions carries out the page's actions; Token is what they need.
	// Actions are off (403) when either is empty.
	Actions Actions
	Token   string
	// Audit keeps a record of every action tried; required with Actions.
	Audit Audit
	// Limits bound how often actions may be tried; zero fields take
	// DefaultLimits'.
	Limits Limits
	// Log gets a line per action (never the token).
	Log zerolog.Logger
	// Metrics may be nil.
	Metrics *Metrics
}

// Handler returns the endpoint's routes.
func Handler(c Config) http.Handler {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		// Alive means the process answers HTTP; readiness is /readyz.
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, waiting := c.Health.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", strings.Join(waiting, ", "))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.Gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		ready, _ := c.Health.Ready()
		rep := Report{
			Version:       c.Static.Build.Version,
			UptimeSeconds: c.Now().Sub(c.Static.Started).Seconds(),
			Ready:         ready,
			Components:    c.Health.Snapshot(),
			Static:        c.Static,
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	})
	if c.Source != nil {
		p := newPage(c)
		mux.HandleFunc("GET /{$}", p.serveFull)
		mux.HandleFunc("GET /live", p.serveLive)
		mux.HandleFunc("GET /evidence/{path...}", p.serveImage)
		a := newActions(c)
		mux.HandleFunc("POST /actions/open", a.handle(a.open))
		mux.HandleFunc("POST /actions/presence/remove", a.handle(a.removePresence))
		mux.HandleFunc("POST /actions/resync", a.handle(a.resync))
	}
	return allowOnly(c.Allow, c.Metrics, mux)
}

// allowOnly refuses clients outside nets (none: everyone is let in).
func allowOnly(nets []netip.Prefix, m *Metrics, h http.Handler) http.Handler {
	if len(nets) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := clientAddr(r)
		if !ok || !allowed(nets, a) {
			m.refused.WithLabelValues("network").Inc()
			http.Error(w, fmt.Sprintf("403 forbidden: %s is not in status.allow", a), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// clientAddr is the connection's peer; a proxy's X-Forwarded-For is not
// believed (the listener is for the local network).
func clientAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	// Prefixes never contain an address with a zone (fe80::1%eth0).
	return ap.Addr().Unmap().WithZone(""), true
}

func allowed(nets []netip.Prefix, a netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Server serves a handler on a listener until its context ends.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	comp *health.Component
	log  zerolog.Logger
}

// Listen binds addr now, so that a port in use fails start-up with a
// clear error instead of surfacing later in a goroutine.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// NewServer returns a server for h on ln, reporting through comp.
func NewServer(ln net.Listener, h http.Handler, comp *health.Component, log zerolog.Logger) *Server {
	return &Server{
		ln:   ln,
		comp: comp,
		log:  log,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       time.Minute,
		},
	}
}

// Close releases the listener of a server that will not Run.
func (s *Server) Close() error { return s.ln.Close() }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then stops taking connections and gives
// requests in flight up to two seconds.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.comp.Set(health.OK, true, "listening on "+s.Addr())
	s.log.Info().Str("addr", s.Addr()).Msg("status endpoint serving")
	select {
	case err := <-errc:
		s.comp.Set(health.Failed, false, err.Error())
		return fmt.Errorf("status: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	s.comp.Set(health.Stopped, false, "")
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("status: serve: %w", err)
	}
	if err != nil {
		return fmt.Errorf("status: shutdown: %w", err)
	}
	return nil
}
