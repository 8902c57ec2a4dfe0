package outbox

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the outbox's counters.
type Metrics struct {
	recorded   prometheus.Counter
	duplicates prometheus.Counter
	dropped    *prometheus.CounterVec
	done       prometheus.Counter
	swept      prometheus.Counter

	redacted        prometheus.Counter
	filesDeleted    prometheus.Counter
	held            prometheus.Gauge
	retentionErrors prometheus.Counter
}

// NewMetrics registers the outbox's counters with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		recorded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "outbox", Name: "passages_recorded_total",
			Help: "Passages committed to the outbox.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "outbox", Name: "passages_duplicate_total",
			Help: "Passages handed over again with an id already kept; kept once.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "outbox", Name: "passages_dropped_total",
			Help: "Passages given up because the outbox was full, by policy: drop_oldest (the oldest waiting passage gave way) or refuse_new (the new one was not kept).",
		}, []string{"policy"}),
		done: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "outbox", Name: "entries_done_total",
			Help: "Entries removed from the outbox after delivery (or as undeliverable).",
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "outbox", Name: "passages_swept_total",
			Help: "Local copies of uploaded passages deleted after the retention period.",
		}),
		redacted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "retention", Name: "passages_redacted_total",
			Help: "Passages whose evidence images were deleted and plate removed from the local copy after retention.evidence.",
		}),
		filesDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "retention", Name: "files_deleted_total",
			Help: "Evidence images deleted by retention.",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "retention", Name: "held_passages",
			Help: "Passages past retention.evidence whose evidence is kept for a charge or sanction until the central system acknowledges them.",
		}),
		retentionErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "retention", Name: "errors_total",
			Help: "Retention rounds that could not finish.",
		}),
	}
	m.dropped.WithLabelValues("drop_oldest")
	m.dropped.WithLabelValues("refuse_new")
	if reg != nil {
		reg.MustRegister(m.recorded, m.duplicates, m.dropped, m.done, m.swept,
			m.redacted, m.filesDeleted, m.held, m.retentionErrors)
	}
	return m
}

// RegisterGauges exports the outbox's depth and the age of its oldest
// entry, read at scrape time.
func (o *Outbox) RegisterGauges(reg prometheus.Registerer, now func() time.Time) {
	stat := func(f func(Stats) float64) func() float64 {
		return func() float64 {
			s, err := o.Stats()
			if err != nil {
				return -1
			}
			return f(s)
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "outbox", Name: "passages",
			Help: "Passages waiting for upload.",
		}, stat(func(s Stats) float64 { return float64(s.Passages) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "outbox", Name: "entries",
			Help: "Messages waiting for upload: passages, presence changes and evidence images.",
		}, stat(func(s Stats) float64 { return float64(s.Entries) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "outbox", Name: "passages_max",
			Help: "The most passages the outbox keeps waiting (mqtt.outbox_max_passages).",
		}, stat(func(s Stats) float64 { return float64(s.Max) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "outbox", Name: "oldest_age_seconds",
			Help: "Age of the oldest waiting entry's passage; 0 when the outbox is empty.",
		}, stat(func(s Stats) float64 {
			if s.Oldest.IsZero() {
				return 0
			}
			return now().Sub(s.Oldest).Seconds()
		})),
	)
}
