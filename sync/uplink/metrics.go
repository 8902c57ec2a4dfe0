package uplink

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the uplink's counters.
type Metrics struct {
	published *prometheus.CounterVec
	delivered *prometheus.CounterVec
	skipped   *prometheus.CounterVec
	failed    prometheus.Counter
	restarts  prometheus.Counter
	inflight  prometheus.Gauge
}

// NewMetrics registers the uplink's metrics with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "uplink", Name: "published_total",
			Help: "Messages published from the outbox, by kind (passage, presence, plate_image, scene_image); a message sent again counts again.",
		}, []string{"kind"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "uplink", Name: "delivered_total",
			Help: "Messages acknowledged by the broker on a connection that stayed up, by kind.",
		}, []string{"kind"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "uplink", Name: "evidence_skipped_total",
			Help: "Evidence images not sent, by reason: expired (past retention.evidence), missing, unreadable, too_large, off.",
		}, []string{"reason"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "uplink", Name: "deliveries_failed_total",
			Help: "Deliveries not acknowledged (connection lost, timeout); the outbox sends them again.",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "uplink", Name: "restarts_total",
			Help: "Times the uplink started again from the head of the outbox.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "uplink", Name: "in_flight",
			Help: "Messages published and not yet acknowledged.",
		}),
	}
	for _, k := range []string{"passage", "presence", "plate_image", "scene_image"} {
		m.published.WithLabelValues(k)
		m.delivered.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.published, m.delivered, m.skipped, m.failed, m.restarts, m.inflight)
	}
	return m
}
