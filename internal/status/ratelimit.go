package status

import (
	"net/netip"
	"sync"
	"time"
)

// Limits bound how often the page's actions may be tried: a token bucket
// per client address and one for all clients together. Every try counts,
// a wrong token too, so a token cannot be guessed at speed.
type Limits struct {
	ClientBurst int           // tries a client may make at once
	ClientEvery time.Duration // and then one per this
	TotalBurst  int
	TotalEvery  time.Duration
}

// DefaultLimits: a technician may try 5 actions in a row and then one
// every 10 s; all clients together 20, then one every 3 s.
var DefaultLimits = Limits{ClientBurst: 5, ClientEvery: 10 * time.Second, TotalBurst: 20, TotalEvery: 3 * time.Second}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.ClientBurst <= 0 {
		l.ClientBurst = d.ClientBurst
	}
	if l.ClientEvery <= 0 {
		l.ClientEvery = d.ClientEvery
	}
	if l.TotalBurst <= 0 {
		l.TotalBurst = d.TotalBurst
	}
	if l.TotalEvery <= 0 {
		l.TotalEvery = d.TotalEvery
	}
	return l
}

// maxClients bounds the per-client buckets kept; past it the buckets
// that have refilled are forgotten (they hold nothing a new one would
// not).
const maxClients = 1024

type bucket struct {
	tokens float64
	at     time.Time
}

// fill brings b up to now at one token per every, at most burst.
func (b *bucket) fill(now time.Time, burst int, every time.Duration) {
	if b.at.IsZero() {
		b.tokens, b.at = float64(burst), now
		return
	}
	if now.After(b.at) {
		b.tokens = min(float64(burst), b.tokens+float64(now.Sub(b.at))/float64(every))
		b.at = now
	}
}

// wait is how long until b holds a whole token.
func (b *bucket) wait(every time.Duration) time.Duration {
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(every))
}

type limiter struct {
	l       Limits
	mu      sync.Mutex
	total   bucket
	clients map[netip.Addr]*bucket
}

func newLimiter(l Limits) *limiter {
	return &limiter{l: l.withDefaults(), clients: map[netip.Addr]*bucket{}}
}

// take spends a token of client's bucket and of the total one, or none
// and says how long to wait and whose limit it is ("client" or "total").
func (r *limiter) take(client netip.Addr, now time.Time) (wait time.Duration, whose string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.clients[client]
	if c == nil {
		if len(r.clients) >= maxClients {
			r.forget(now)
		}
		c = &bucket{}
		r.clients[client] = c
	}
	c.fill(now, r.l.ClientBurst, r.l.ClientEvery)
	r.total.fill(now, r.l.TotalBurst, r.l.TotalEvery)
	if w := c.wait(r.l.ClientEvery); w > 0 {
		return w, "client"
	}
	if w := r.total.wait(r.l.TotalEvery); w > 0 {
		return w, "total"
	}
	c.tokens--
	r.total.tokens--
	return 0, ""
}

func (r *limiter) forget(now time.Time) {
	for a, b := range r.clients {
		b.fill(now, r.l.ClientBurst, r.l.ClientEvery)
		if b.tokens >= float64(r.l.ClientBurst) {
			delete(r.clients, a)
		}
	}
	if len(r.clients) >= maxClients {
		// A flood of addresses: start again rather than grow.
		clear(r.clients)
	}
}
