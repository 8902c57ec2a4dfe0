package command

import (
	"anprd/sync/protocol"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the command handler's counters.
type Metrics struct {
	commands *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

// NewMetrics registers the command handler's metrics with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "commands", Name: "carried_out_total",
			Help: "Commands accepted and carried out, by type (open, resync, ping) and status (done, failed).",
		}, []string{"type", "status"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "commands", Name: "rejected_total",
			Help: "Commands refused, by reason (unsigned, bad_signature, unknown_key, no_key, malformed, too_large, invalid, expired, replayed).",
		}, []string{"reason"}),
	}
	for _, r := range protocol.RejectReasons {
		m.rejected.WithLabelValues(string(r))
	}
	if reg != nil {
		reg.MustRegister(m.commands, m.rejected)
	}
	return m
}
