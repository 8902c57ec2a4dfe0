package mqtt

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the connection's counters.
type Metrics struct {
	connected prometheus.Gauge
	connects  prometheus.Counter
	failures  prometheus.Counter
	losses    prometheus.Counter
	received  *prometheus.CounterVec
	dropped   *prometheus.CounterVec
}

// NewMetrics registers the connection's metrics with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "mqtt", Name: "connected",
			Help: "1 while connected to the broker.",
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "mqtt", Name: "connects_total",
			Help: "Connections made to the broker.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "mqtt", Name: "connect_failures_total",
			Help: "Connection attempts that failed.",
		}),
		losses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "mqtt", Name: "connection_losses_total",
			Help: "Connections that dropped.",
		}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "mqtt", Name: "messages_received_total",
			Help: "Messages received, by subscription.",
		}, []string{"subscription"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "mqtt", Name: "messages_dropped_total",
			Help: "Messages received but dropped because the subscriber's queue was full, by subscription.",
		}, []string{"subscription"}),
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.connects, m.failures, m.losses, m.received, m.dropped)
	}
	return m
}
