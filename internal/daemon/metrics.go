package daemon

import (
	"os"
	"path/filepath"
	"time"

	"anprd/internal/buildinfo"
	"anprd/internal/health"
	"anprd/internal/state"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "anprd"

type metrics struct {
	loopIterations   prometheus.Counter
	watchdogPings    prometheus.Counter
	watchdogWithheld prometheus.Counter
	passages         *prometheus.CounterVec
}

// newMetrics registers the daemon's own metrics, the Go and process
// collectors, and the collectors that read the health registry and the
// state database at scrape time.
func newMetrics(reg prometheus.Registerer, hr *health.Registry, beat *health.Heartbeat, now func() time.Time, db *state.DB, site, device, digest string) *metrics {
	m := &metrics{
		loopIterations: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "main_loop_iterations_total",
			Help: "Rounds completed by the daemon's main loop.",
		}),
		watchdogPings: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "watchdog_pings_total",
			Help: "WATCHDOG=1 notifications sent to systemd.",
		}),
		watchdogWithheld: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "watchdog_pings_withheld_total",
			Help: "Watchdog pings not sent because the main loop's heartbeat was stale.",
		}),
		passages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "passages_total",
			Help: "Passages committed to the outbox, by lane, the decision's classification and action (manual for a manual opening without a decision).",
		}, []string{"lane", "class", "action"}),
	}
	bi := buildinfo.Get()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.loopIterations, m.watchdogPings, m.watchdogWithheld, m.passages,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help:        "Always 1; labels say which anprd is running.",
			ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_info",
			Help:        "Always 1; labels name the site, the device and the digest of the configuration in force.",
			ConstLabels: prometheus.Labels{"site": site, "device": device, "digest": digest},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "main_loop_heartbeat_age_seconds",
			Help: "Seconds since the main loop last completed a round (-1 before the first).",
		}, func() float64 {
			age, ok := beat.Age(now())
			if !ok {
				return -1
			}
			return age.Seconds()
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "state_schema_version",
			Help: "Schema version of the state database.",
		}, func() float64 { return float64(db.Schema()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "state_db_size_bytes",
			Help: "Size of the state database file.",
		}, func() float64 {
			fi, err := os.Stat(filepath.Join(db.Dir(), state.FileName))
			if err != nil {
				return 0
			}
			return float64(fi.Size())
		}),
		&componentCollector{hr: hr},
	)
	return m
}

// componentCollector exports the health registry as metrics at scrape
// time, so the metric can never disagree with /readyz.
type componentCollector struct{ hr *health.Registry }

var (
	componentReadyDesc = prometheus.NewDesc(namespace+"_component_ready",
		"1 when the component reports ready.", []string{"component"}, nil)
	componentUpDesc = prometheus.NewDesc(namespace+"_component_up",
		"1 when the component's state is ok or degraded.", []string{"component"}, nil)
)

func (c *componentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- componentReadyDesc
	ch <- componentUpDesc
}

func (c *componentCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.hr.Snapshot() {
		ch <- prometheus.MustNewConstMetric(componentReadyDesc, prometheus.GaugeValue, b2f(s.Ready), s.Name)
		up := s.State == health.OK || s.State == health.Degraded
		ch <- prometheus.MustNewConstMetric(componentUpDesc, prometheus.GaugeValue, b2f(up), s.Name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
