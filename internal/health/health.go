// Package health keeps what each part of the daemon says about itself, so
// that /readyz, /api/v1/status, the metrics and the systemd watchdog all
// read one source. It stores reports; it does not probe anything itself and
// must not block: components call it from their own loops.
package health

import (
	"sort"
	"sync"
	"time"
)

// State is a component's condition, from the technician's point of view.
type State string

const (
	Starting State = "starting" // not yet serving
	OK       State = "ok"       // working as configured
	Degraded State = "degraded" // working, but something needs attention
	Failed   State = "failed"   // not working
	Stopped  State = "stopped"  // shut down on purpose
)

// Status is one component's latest report.
type Status struct {
	Name   string    `json:"name"`
	State  State     `json:"state"`
	Ready  bool      `json:"ready"`
	Detail string    `json:"detail,omitempty"`
	Since  time.Time `json:"since"` // when State last changed
}

// Registry holds the components' reports. The zero value is not usable;
// call NewRegistry.
type Registry struct {
	now func() time.Time

	mu    sync.Mutex
	comps map[string]*Status
}

// NewRegistry returns an empty registry that stamps reports with now.
func NewRegistry(now func() time.Time) *Registry {
	return &Registry{now: now, comps: make(map[string]*Status)}
}

// Component is the handle a component reports through.
type Component struct {
	r    *Registry
	name string
}

// Register adds a component in state Starting, not ready. Registering a
// name twice returns a handle to the same entry.
func (r *Registry) Register(name string) *Component {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.comps[name]; !ok {
		r.comps[name] = &Status{Name: name, State: Starting, Since: r.now()}
	}
	return &Component{r: r, name: name}
}

// Set records the component's state, readiness and a short detail for a
// technician.
func (c *Component) Set(s State, ready bool, detail string) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	st := c.r.comps[c.name]
	if st.State != s {
		st.Since = c.r.now()
	}
	st.State, st.Ready, st.Detail = s, ready, detail
}

// Snapshot returns every component's status, sorted by name.
func (r *Registry) Snapshot() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.comps))
	for _, s := range r.comps {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Ready reports whether every component is ready, and names those that
// are not.
func (r *Registry) Ready() (bool, []string) {
	var waiting []string
	for _, s := range r.Snapshot() {
		if !s.Ready {
			waiting = append(waiting, s.Name)
		}
	}
	return len(waiting) == 0, waiting
}
