package health

import (
	"sync/atomic"
	"time"
)

// Heartbeat is the main loop's sign of life. The loop calls Beat each time
// it completes a round; the watchdog only pings systemd while the last
// beat is recent, so a wedged loop gets the daemon restarted.
type Heartbeat struct {
	last atomic.Int64 // unix nanoseconds of the last beat; 0 before the first
}

// Beat records that the loop completed a round at now.
func (h *Heartbeat) Beat(now time.Time) { h.last.Store(now.UnixNano()) }

// Age is the time since the last beat, or ok=false before the first one.
func (h *Heartbeat) Age(now time.Time) (age time.Duration, ok bool) {
	l := h.last.Load()
	if l == 0 {
		return 0, false
	}
	return now.Sub(time.Unix(0, l)), true
}
