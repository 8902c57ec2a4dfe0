package lane

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the lanes' metrics, shared by all lanes (labelled by lane).
type Metrics struct {
	passages     *prometheus.CounterVec
	steps        *prometheus.HistogramVec
	decideErrors *prometheus.CounterVec
	recordErrors *prometheus.CounterVec
	unrecorded   *prometheus.GaugeVec
	dropped      *prometheus.CounterVec
}

// Steps of a passage's timings that are measured, as the step label has
// them.
const (
	StepTriggerToRead    = "trigger_to_read"
	StepReadToDecision   = "read_to_decision"
	StepDecisionToOpen   = "decision_to_open"
	StepTriggerToOpen    = "trigger_to_open"
	StepOpenToThrough    = "open_to_through"
	StepDecisionToRecord = "decision_to_record"
)

// NewMetrics registers the lane metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		passages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "lane", Name: "passages_total",
			Help: "Passages handed to the outbox, by kind (vehicle, tailgate, manual) and gate action (opened, kept_shut, no_barrier, failed).",
		}, []string{"lane", "kind", "gate"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "anprd", Subsystem: "lane", Name: "step_seconds",
			Help:    "Time between the moments of a passage: trigger_to_read, read_to_decision, decision_to_open, trigger_to_open, open_to_through, decision_to_record.",
			Buckets: []float64{.005, .01, .025, .05, .075, .1, .15, .2, .3, .5, 1, 2, 5, 10, 30},
		}, []string{"lane", "step"}),
		decideErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "lane", Name: "decision_errors_total",
			Help: "Decisions that could not be made (the database failed); the barrier stayed shut.",
		}, []string{"lane"}),
		recordErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "lane", Name: "record_errors_total",
			Help: "Failures to hand a passage to the outbox; it is kept and retried.",
		}, []string{"lane"}),
		unrecorded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "lane", Name: "passages_unrecorded",
			Help: "Passages held in memory because the outbox refused them.",
		}, []string{"lane"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "lane", Name: "read_events_dropped_total",
			Help: "Read events the lane could not take because it was behind (should stay 0).",
		}, []string{"lane"}),
	}
	reg.MustRegister(m.passages, m.steps, m.decideErrors, m.recordErrors, m.unrecorded, m.dropped)
	return m
}

type laneMetrics struct {
	m            *Metrics
	lane         string
	decideErrors prometheus.Counter
	recordErrors prometheus.Counter
	unrecorded   prometheus.Gauge
	dropped      prometheus.Counter
}

func (m *Metrics) forLane(lane string) *laneMetrics {
	lm := &laneMetrics{m: m, lane: lane, decideErrors: m.decideErrors.WithLabelValues(lane),
		recordErrors: m.recordErrors.WithLabelValues(lane), unrecorded: m.unrecorded.WithLabelValues(lane),
		dropped: m.dropped.WithLabelValues(lane)}
	lm.unrecorded.Set(0)
	return lm
}

func (lm *laneMetrics) step(step string, seconds float64) {
	lm.m.steps.WithLabelValues(lm.lane, step).Observe(seconds)
}
