package watch

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	// Touch each vector so it has a series to lint.
	m.readSeconds.WithLabelValues("in-1").Observe(0.05)
	m.skipped.WithLabelValues("in-1").Inc()
	m.events.WithLabelValues("in-1", "early").Inc()
	m.latency.WithLabelValues("in-1").Observe(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 4 {
		t.Fatalf("gathered %d families, want 4", len(mfs))
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "anprd_") {
			t.Errorf("metric %s lacks the anprd_ prefix", mf.GetName())
		}
	}
}
