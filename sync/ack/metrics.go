package ack

import (
	"anprd/sync/protocol"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ack handler's counters.
type Metrics struct {
	acks     *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg (nil: not registered, for
// tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Name: "acks_total",
			Help: "Passage ids acknowledged by the central system, by outcome: applied (held here), unknown (not held here).",
		}, []string{"outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Name: "acks_rejected_total",
			Help: "Acknowledgements refused, by reason (unsigned, bad_signature, unknown_key, no_key, malformed, too_large, invalid).",
		}, []string{"reason"}),
	}
	m.acks.WithLabelValues("applied")
	m.acks.WithLabelValues("unknown")
	for _, r := range protocol.RejectReasons {
		m.rejected.WithLabelValues(string(r))
	}
	if reg != nil {
		reg.MustRegister(m.acks, m.rejected)
	}
	return m
}
