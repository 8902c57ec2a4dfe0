package permitsync

import (
	"anprd/sync/protocol"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the permit sync's counters.
type Metrics struct {
	applied  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	requests *prometheus.CounterVec
	chunks   prometheus.Counter
	seq      prometheus.Gauge
}

// NewMetrics registers the permit sync's metrics with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "sync", Name: "applied_total",
			Help: "Permit deltas and snapshots applied, by kind (delta, snapshot).",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "sync", Name: "rejected_total",
			Help: "Permit sync messages refused, by reason (unsigned, bad_signature, unknown_key, no_key, malformed, too_large, invalid, stale, gap, digest).",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "sync", Name: "requests_total",
			Help: "Resync requests sent, by reason (connect, gap, snapshot_failed, command).",
		}, []string{"reason"}),
		chunks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "sync", Name: "snapshot_chunks_total",
			Help: "Snapshot chunks loaded.",
		}),
		seq: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "sync", Name: "seq",
			Help: "Sequence number of the permit data applied last (set when it changes).",
		}),
	}
	for _, r := range protocol.RejectReasons {
		m.rejected.WithLabelValues(string(r))
	}
	m.applied.WithLabelValues("delta")
	m.applied.WithLabelValues("snapshot")
	if reg != nil {
		reg.MustRegister(m.applied, m.rejected, m.requests, m.chunks, m.seq)
	}
	return m
}
