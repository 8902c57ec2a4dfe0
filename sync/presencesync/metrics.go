package presencesync

import (
	"anprd/sync/protocol"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the counters of other boxes' presence changes.
type Metrics struct {
	applied  *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

// NewMetrics registers them with reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "presence_peers", Name: "changes_total",
			Help: "Presence changes from the site's other boxes, by outcome: enter, exit, stale (older than what is recorded), other_facility.",
		}, []string{"outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "presence_peers", Name: "rejected_total",
			Help: "Presence changes from other boxes refused, by reason (malformed, too_large, invalid).",
		}, []string{"reason"}),
	}
	for _, o := range []string{"enter", "exit", "stale", "other_facility"} {
		m.applied.WithLabelValues(o)
	}
	for _, r := range []protocol.RejectReason{protocol.RejectMalformed, protocol.RejectTooLarge, protocol.RejectInvalid} {
		m.rejected.WithLabelValues(string(r))
	}
	if reg != nil {
		reg.MustRegister(m.applied, m.rejected)
	}
	return m
}
