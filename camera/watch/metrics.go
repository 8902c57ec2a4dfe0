package watch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the camera side's metrics, shared by all lanes (labelled by
// lane).
type Metrics struct {
	readSeconds *prometheus.HistogramVec
	skipped     *prometheus.CounterVec
	events      *prometheus.CounterVec
	latency     *prometheus.HistogramVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		readSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "anprd", Name: "frame_read_seconds",
			Help:    "Time to read the plates in one frame, detection to read.",
			Buckets: []float64{.01, .02, .04, .08, .15, .3, .6, 1.2},
		}, []string{"lane"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Name: "frames_skipped_total",
			Help: "Frames not read because nothing moved and no vehicle was being tracked.",
		}, []string{"lane"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Name: "read_events_total",
			Help: "Read events, early (confident) and final (vehicle gone).",
		}, []string{"lane", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "anprd", Name: "vehicle_track_seconds",
			Help:    "Time from a vehicle's first to last read.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 8),
		}, []string{"lane"}),
	}
	reg.MustRegister(m.readSeconds, m.skipped, m.events, m.latency)
	return m
}
