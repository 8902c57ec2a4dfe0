package status

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the page was asked to do and what it refused.
type Metrics struct {
	actions *prometheus.CounterVec
	refused *prometheus.CounterVec
}

// NewMetrics registers the status listener's metrics with reg (nil:
// registered nowhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "status", Name: "actions_total",
			Help: "Actions asked of the status page, by action and result (ok, failed, invalid, unauthorized, rate_limited, disabled).",
		}, []string{"action", "result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "status", Name: "refused_total",
			Help: "Requests the status listener refused, by reason (network: client outside status.allow; image_path; cross_site).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.actions, m.refused)
	}
	return m
}
