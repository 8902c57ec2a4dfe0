package homeassistant

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the discovery's counters.
type Metrics struct {
	messages *prometheus.CounterVec
	errors   prometheus.Counter
}

// NewMetrics registers the metrics with reg (nil: not registered, for
// tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "homeassistant", Name: "messages_total",
			Help: "Home Assistant discovery messages published, by kind (config, state, remove).",
		}, []string{"kind"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "homeassistant", Name: "publish_errors_total",
			Help: "Home Assistant messages not published (no connection); the states are sent again at the next connect.",
		}),
	}
	for _, k := range []string{"config", "state", "remove"} {
		m.messages.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.errors)
	}
	return m
}
