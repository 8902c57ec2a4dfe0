// Package status serves the local, read-only status endpoint that
// technicians and the box's own tooling (anprctl, the status page) use:
// liveness, readiness, Prometheus metrics and a JSON summary. It reports
// what the health registry holds; it takes no actions and changes no
// state.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
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
}

// Handler returns the endpoint's routes.
func Handler(c Config) http.Handler {
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
	return mux
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
