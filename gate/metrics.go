package gate

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the barriers' metrics, shared by all lanes (labelled by
// lane).
type Metrics struct {
	transitions  *prometheus.CounterVec
	state        *prometheus.GaugeVec
	faults       *prometheus.CounterVec
	passed       *prometheus.CounterVec
	opens        *prometheus.CounterVec
	outputErrors *prometheus.CounterVec
	inputErrors  *prometheus.CounterVec
	inputResyncs *prometheus.CounterVec
	alarm        *prometheus.GaugeVec
	dropped      *prometheus.CounterVec
}

// NewMetrics registers the barrier metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "gate", Name: "transitions_total",
			Help: "Barrier state changes, by the state left and the state entered.",
		}, []string{"lane", "from", "to"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "gate", Name: "state",
			Help: "1 for the barrier's present state (closed, opening, open, closing, fault), 0 for the others.",
		}, []string{"lane", "state"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "gate", Name: "faults_total",
			Help: "Barrier faults, by kind: fault_input, open_not_confirmed, close_not_confirmed, switches, output, input.",
		}, []string{"lane", "kind"}),
		passed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "gate", Name: "vehicles_passed_total",
			Help: "Vehicles that went through: the safety loop occupied, then clear.",
		}, []string{"lane"}),
		opens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "gate", Name: "open_commands_total",
			Help: "Open commands accepted (vehicles let in, manual openings).",
		}, []string{"lane"}),
		outputErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "gate", Name: "output_errors_total",
			Help: "Failures to drive an output line.",
		}, []string{"lane", "line"}),
		inputErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "gate", Name: "input_errors_total",
			Help: "Failures to read an input line while running; each is a fault, and an unreadable safety loop counts as occupied.",
		}, []string{"lane", "line"}),
		inputResyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "gate", Name: "input_resyncs_total",
			Help: "Inputs whose level, read from the line, differed from their last edge (edges lost by the driver or the kernel).",
		}, []string{"lane", "line"}),
		alarm: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "anprd", Subsystem: "gate", Name: "safety_loop_alarm",
			Help: "1 while the safety loop has been occupied longer than the alarm time; the barrier stays up.",
		}, []string{"lane"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "anprd", Subsystem: "gate", Name: "events_dropped_total",
			Help: "Barrier events the lane did not take in time (should stay 0).",
		}, []string{"lane"}),
	}
	reg.MustRegister(m.transitions, m.state, m.faults, m.passed, m.opens, m.outputErrors, m.inputErrors, m.inputResyncs, m.alarm, m.dropped)
	return m
}

// laneMetrics are one lane's children, looked up once.
type laneMetrics struct {
	m       *Metrics
	lane    string
	passed  prometheus.Counter
	opens   prometheus.Counter
	alarm   prometheus.Gauge
	dropped prometheus.Counter
}

func (m *Metrics) forLane(lane string) *laneMetrics {
	lm := &laneMetrics{m: m, lane: lane,
		passed: m.passed.WithLabelValues(lane), opens: m.opens.WithLabelValues(lane),
		alarm: m.alarm.WithLabelValues(lane), dropped: m.dropped.WithLabelValues(lane)}
	for s := Closed; s <= Fault; s++ {
		m.state.WithLabelValues(lane, s.String()).Set(0)
	}
	lm.alarm.Set(0)
	return lm
}

func (lm *laneMetrics) transition(from, to State) {
	lm.m.transitions.WithLabelValues(lm.lane, from.String(), to.String()).Inc()
	if from != Unknown {
		lm.m.state.WithLabelValues(lm.lane, from.String()).Set(0)
	}
	lm.m.state.WithLabelValues(lm.lane, to.String()).Set(1)
}

func (lm *laneMetrics) fault(kind string) { lm.m.faults.WithLabelValues(lm.lane, kind).Inc() }

func (lm *laneMetrics) outputError(l Line) {
	lm.m.outputErrors.WithLabelValues(lm.lane, l.String()).Inc()
}

func (lm *laneMetrics) inputError(l Line) {
	lm.m.inputErrors.WithLabelValues(lm.lane, l.String()).Inc()
}

func (lm *laneMetrics) inputResync(l Line) {
	lm.m.inputResyncs.WithLabelValues(lm.lane, l.String()).Inc()
}
