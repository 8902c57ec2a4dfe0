package telemetry

import "github.com/prometheus/client_golang/prometheus"

// Metrics are telemetry's counters.
type Metrics struct {
	events     *prometheus.CounterVec
	dropped    prometheus.Counter
	heartbeats prometheus.Counter
}

// NewMetrics registers them with reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "telemetry", Name: "events_total",
			Help: "State changes reported, by part (lane, camera, barrier).",
		}, []string{"part"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "telemetry", Name: "events_dropped_total",
			Help: "State change events dropped because too many waited for a connection.",
		}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "telemetry", Name: "heartbeats_total",
			Help: "Heartbeats published.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.dropped, m.heartbeats)
	}
	return m
}
