package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

const metricsDoc = "../../docs/metrics.md"

// fleetDaemon is a daemon with every part that registers metrics: a
// simulated barrier lane and a free-flow lane (their cameras and reader
// are built, the models are not there, so the lanes report failed but
// their metrics exist), the uplink, Home Assistant discovery and
// retention.
func fleetDaemon(t *testing.T) *Daemon {
	t.Helper()
	dir := t.TempDir()
	cfg := validConfig(t, `version: 1
site: {id: oslo-p1, device: box-1}
state: {dir: `+dir+`}
reader: {models_dir: `+filepath.Join(dir, "no-models")+`}
mqtt:
  broker: "tcp://127.0.0.1:1"
  home_assistant: {enabled: true}
lanes:
  - id: in-1
    direction: entry
    camera: {source: `+filepath.Join(dir, "no-camera")+`}
    gate: {simulate: true, open: 1, safety_loop: 2, open_switch: 3, closed_switch: 4}
  - id: ff-1
    direction: exit
    mode: free-flow
    camera: {source: `+filepath.Join(dir, "no-camera")+`}
`)
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Notifier: &fakeNotifier{}, ReaderCheck: fakeReader})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// registered is what the daemon's registry describes: metric name to its
// variable label names, for the anprd_ metrics.
func registered(t *testing.T, reg *prometheus.Registry) map[string][]string {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	re := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	out := map[string][]string{}
	for d := range ch {
		m := re.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		if !strings.HasPrefix(m[1], "anprd_") {
			continue
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		sort.Strings(labels)
		out[m[1]] = labels
	}
	return out
}

type docMetric struct {
	name, typ string
	labels    []string
	line      int
}

// documented reads the metric tables of docs/metrics.md: rows whose first
// cell is a backquoted anprd_ name, then type, then labels (backquoted,
// comma-separated, or "-").
func documented(t *testing.T) map[string]docMetric {
	t.Helper()
	f, err := os.Open(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]docMetric{}
	sc := bufio.NewScanner(f)
	n := 0
	row := regexp.MustCompile("^\\| `(anprd_[a-z0-9_]+)` \\| (counter|gauge|histogram|summary) \\| ([^|]*) \\|")
	for sc.Scan() {
		n++
		line := sc.Text()
		if !strings.HasPrefix(line, "| `anprd_") {
			continue
		}
		m := row.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s:%d: a metric row must read | `name` | type | labels | ...: %s", metricsDoc, n, line)
			continue
		}
		var labels []string
		if ls := strings.TrimSpace(m[3]); ls != "-" {
			for _, l := range strings.Split(ls, ",") {
				labels = append(labels, strings.Trim(strings.TrimSpace(l), "`"))
			}
		}
		sort.Strings(labels)
		if prev, dup := out[m[1]]; dup {
			t.Errorf("%s:%d: %s listed again (first on line %d)", metricsDoc, n, m[1], prev.line)
		}
		out[m[1]] = docMetric{name: m[1], typ: m[2], labels: labels, line: n}
	}
	return out
}

// TestMetricsDocumented: every anprd_ metric the daemon registers is in
// docs/metrics.md with its labels and type, and the page lists nothing
// the daemon does not register.
func TestMetricsDocumented(t *testing.T) {
	d := fleetDaemon(t)
	defer d.Close()
	reg := registered(t, d.Registry())
	doc := documented(t)
	if len(reg) < 50 {
		t.Fatalf("only %d anprd_ metrics registered; the test daemon lacks parts", len(reg))
	}
	types := map[string]string{}
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		types[mf.GetName()] = strings.ToLower(mf.GetType().String())
	}
	for name, labels := range reg {
		dm, ok := doc[name]
		if !ok {
			t.Errorf("%s (labels %v) is registered but not in %s", name, labels, metricsDoc)
			continue
		}
		if !slices.Equal(dm.labels, labels) {
			t.Errorf("%s:%d: %s has labels %v, the daemon's %v", metricsDoc, dm.line, name, dm.labels, labels)
		}
		if typ, ok := types[name]; ok && typ != dm.typ {
			t.Errorf("%s:%d: %s is a %s, the page says %s", metricsDoc, dm.line, name, typ, dm.typ)
		}
	}
	for name, dm := range doc {
		if _, ok := reg[name]; !ok {
			t.Errorf("%s:%d: %s is not registered by the daemon", metricsDoc, dm.line, name)
		}
	}
}

// TestPromtoolCheckMetrics pipes a real /metrics scrape of a running
// daemon through promtool check metrics; any complaint fails.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; make deps installs it)")
	}
	d := fleetDaemon(t)
	runUntilCleanup(t, d)
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, b := getBody(t, "http://"+d.StatusAddr()+"/metrics")
		if code == http.StatusOK && strings.Contains(b, "anprd_main_loop_iterations_total") {
			body = b
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Errorf("promtool check metrics (%v):\n%s", err, out.String())
	}
	if !strings.Contains(body, "anprd_gate_state") || !strings.Contains(body, "anprd_outbox_passages ") {
		t.Errorf("the scrape lacks the lanes' or the outbox's metrics:\n%.2000s", body)
	}
}

// TestGrafanaDashboard: docs/grafana-fleet.json is valid JSON, templated
// by site, device and instance, and every metric it queries is in
// docs/metrics.md (so a renamed metric cannot leave a panel empty).
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana-fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("grafana-fleet.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Error("dashboard without title or uid")
	}
	doc := documented(t)
	metric := regexp.MustCompile(`\banprd_[a-z0-9_]+`)
	check := func(where, expr string) {
		for _, name := range metric.FindAllString(expr, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok {
					if dm, ok := doc[b]; ok && dm.typ == "histogram" {
						base = b
					}
				}
			}
			if _, ok := doc[base]; !ok {
				t.Errorf("%s queries %s, which docs/metrics.md does not list", where, name)
			}
		}
	}
	vars := map[string]bool{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = true
		if q, ok := v.Query.(map[string]any); ok {
			check("variable "+v.Name, fmt.Sprint(q["query"]))
		}
	}
	for _, want := range []string{"datasource", "site", "device", "instance"} {
		if !vars[want] {
			t.Errorf("dashboard not templated by %s", want)
		}
	}
	queries := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %q (%s) has no title or no query", p.Title, p.Type)
		}
		for _, tg := range p.Targets {
			queries++
			check("panel "+p.Title, tg.Expr)
			for _, v := range []string{"$site", "$device", "$instance"} {
				if !strings.Contains(tg.Expr, v) {
					t.Errorf("panel %q: %s does not follow %s", p.Title, tg.Expr, v)
				}
			}
		}
	}
	// The panels the fleet needs.
	titles := ""
	for _, p := range dash.Panels {
		titles += p.Title + "\n"
	}
	for _, want := range []string{"Passages per lane and classification", "Barrier state", "Barrier faults", "Outbox backlog", "Outbox oldest age",
		"Camera frames per second", "Read rate", "Decision latency", "Lane step latencies", "Broker connection", "Permit sequence", "Permit sync lag", "Watchdog"} {
		if !strings.Contains(titles, want) {
			t.Errorf("no panel %q", want)
		}
	}
	if queries < 20 {
		t.Errorf("only %d queries", queries)
	}
}
