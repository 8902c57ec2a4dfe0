package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"anprd/internal/config"
)

// anprctl doctor checks a box's set-up and says what to fix: one line per
// check with its level, the finding and the fix in one sentence. It only
// looks: it opens the camera streams and the broker connection it checks
// and closes them, reads GPIO line info without requesting a line, and
// never opens a barrier or drives an output.

// Levels of a finding. FAIL makes doctor exit 1.
const (
	levelOK   = "ok"
	levelWarn = "warn"
	levelFail = "FAIL"
	levelSkip = "skip"
)

// finding is one check's result.
type finding struct {
	Check   string `json:"check"`
	Level   string `json:"level"`
	Finding string `json:"finding"`
	Fix     string `json:"fix,omitempty"`
}

func okf(check, format string, a ...any) finding {
	return finding{Check: check, Level: levelOK, Finding: fmt.Sprintf(format, a...)}
}

func skipf(check, format string, a ...any) finding {
	return finding{Check: check, Level: levelSkip, Finding: fmt.Sprintf(format, a...)}
}

// bad is a warn or FAIL finding with its fix.
func bad(check, level, what, fix string) finding {
	return finding{Check: check, Level: level, Finding: what, Fix: fix}
}

// doctor holds the checks' dependencies: the real ones in newDoctor, fakes
// in the tests.
type doctor struct {
	loadConfig func(path string, getenv func(string) string) (*config.Config, error)
	state      stateProbe
	models     modelLoader
	camera     cameraProbe
	broker     brokerProbe
	gpio       gpioInspector
	clock      clockProbe
	disk       func(dir string) (free, total uint64, err error)
	systemd    func(ctx context.Context) (map[string]string, error) // nil: no systemctl
	unitFile   string                                               // where make install puts the unit
	access     *accessProbe                                         // nil: not run as root, or no anprd user
	asRoot     bool                                                 // doctor runs as root

	cameraTimeout time.Duration
	brokerTimeout time.Duration
	minFree       uint64
}

// newDoctor wires the real dependencies.
func newDoctor() *doctor {
	d := &doctor{
		loadConfig:    config.Load,
		state:         realState{},
		models:        ortLoader{},
		camera:        realCamera(),
		broker:        realBroker(),
		gpio:          realGPIO{},
		clock:         realClock(),
		disk:          statDisk,
		unitFile:      "/etc/systemd/system/anprd.service",
		cameraTimeout: 10 * time.Second,
		brokerTimeout: 10 * time.Second,
		minFree:       2 << 30,
	}
	if _, err := exec.LookPath("systemctl"); err == nil {
		d.systemd = systemctlShow
	}
	if d.asRoot = os.Geteuid() == 0; d.asRoot {
		if u, err := user.Lookup("anprd"); err == nil {
			d.access = newAccessProbe(u)
		}
	}
	return d
}

const doctorUsage = `usage: anprctl doctor [-config FILE] [-env FILE] [-json] [-camera-timeout D] [-broker-timeout D] [-min-free-gb N]

Checks this box's set-up: config, state directory, disk, models, cameras,
broker, central key, GPIO lines, clock, the systemd unit and (as root) what
the anprd user may read. One line per check: ok, warn, FAIL or skip, what
was found, and what to do. Exits 1 when a check FAILs. It never opens a
barrier: GPIO lines are only inspected, never requested.

`

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/anprd/anprd.yaml", "the daemon's config file")
	envFile := fs.String("env", "/etc/default/anprd", "the unit's environment file (ANPRD_* overrides); anprctl's own environment wins over it; empty for none")
	asJSON := fs.Bool("json", false, "print the findings as one JSON object")
	d := newDoctor()
	fs.DurationVar(&d.cameraTimeout, "camera-timeout", d.cameraTimeout, "how long each camera has to give a frame")
	fs.DurationVar(&d.brokerTimeout, "broker-timeout", d.brokerTimeout, "how long the broker has to accept the connection")
	minFree := fs.Float64("min-free-gb", 2, "warn when the state directory's disk has less free space than this (GiB); FAIL under a tenth of it")
	fs.Usage = func() { fmt.Fprint(stderr, doctorUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	d.minFree = uint64(*minFree * (1 << 30))
	file, err := readEnvFile(*envFile)
	if err != nil {
		fmt.Fprintf(stderr, "anprctl doctor: %v\n", err)
		return 2
	}
	getenv := func(k string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return file[k]
	}
	return report(d.run(context.Background(), *path, getenv), *asJSON, stdout)
}

// report prints the findings and returns the exit code.
func report(fs []finding, asJSON bool, w io.Writer) int {
	failed := 0
	count := map[string]int{}
	for _, f := range fs {
		count[f.Level]++
		if f.Level == levelFail {
			failed++
		}
	}
	if asJSON {
		out := struct {
			OK     bool      `json:"ok"`
			Checks []finding `json:"checks"`
		}{failed == 0, fs}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(w, "%s\n", b)
	} else {
		oneLine := strings.NewReplacer("\r", "", "\n", "; ", "\t", " ")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range fs {
			line := f.Level + "\t" + f.Check + "\t" + oneLine.Replace(f.Finding)
			if f.Fix != "" {
				line += " -> fix: " + oneLine.Replace(f.Fix)
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
		fmt.Fprintf(w, "\n%d ok, %d warn, %d FAIL, %d skipped\n", count[levelOK], count[levelWarn], count[levelFail], count[levelSkip])
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// run runs every check and returns the findings in a fixed order. Checks
// that need the config are skipped when it does not load; the clock and
// the unit are checked regardless.
func (d *doctor) run(ctx context.Context, path string, getenv func(string) string) []finding {
	var out []finding
	cfg, f := d.checkConfig(path, getenv)
	out = append(out, f)
	if cfg == nil {
		for _, c := range []string{"state", "disk", "models", "camera", "broker", "central-key", "gpio"} {
			out = append(out, skipf(c, "needs a valid config"))
		}
		out = append(out, d.checkClock(ctx, "")...)
		return append(out, d.checkSystemd(ctx))
	}
	st, f := d.checkState(cfg.State.Dir)
	out = append(out, f, d.checkDisk(cfg.State.Dir), d.checkModels(cfg.Reader))
	out = append(out, d.checkCameras(ctx, cfg, st)...)
	out = append(out, d.checkBroker(ctx, cfg.MQTT), d.checkCentralKey(cfg.MQTT.CentralKeyFile))
	for i := range cfg.Lanes {
		out = append(out, d.checkGPIO(&cfg.Lanes[i], st)...)
	}
	out = append(out, d.checkClock(ctx, cfg.Site.TimeZone)...)
	out = append(out, d.checkSystemd(ctx))
	if d.access != nil {
		out = append(out, d.access.check(cfg)...)
	} else {
		out = append(out, skipf("access", "run doctor as root (sudo) on a box with the anprd user to check what the service may read and write"))
	}
	return out
}

func (d *doctor) checkConfig(path string, getenv func(string) string) (*config.Config, finding) {
	cfg, err := d.loadConfig(path, getenv)
	if err != nil {
		what := strings.ReplaceAll(err.Error(), "\n", "; ")
		fix := "correct the keys named (configs/anprd.example.yaml explains each), then anprd -check-config " + path
		if os.IsNotExist(err) || strings.Contains(err.Error(), "no such file") {
			fix = "make install writes /etc/anprd/anprd.yaml from the example; or give the file with -config"
		}
		return nil, bad("config", levelFail, what, fix)
	}
	lanes := make([]string, len(cfg.Lanes))
	for i, l := range cfg.Lanes {
		lanes[i] = l.ID + " (" + l.Direction + ", " + l.Mode + ")"
	}
	return cfg, okf("config", "%s: site %s, device %s; lanes %s", cfg.Path, cfg.Site.ID, cfg.Site.Device, strings.Join(lanes, ", "))
}

// runAll runs fns in parallel and returns their findings in order.
func runAll(fns []func() []finding) []finding {
	res := make([][]finding, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = fn() }()
	}
	wg.Wait()
	var out []finding
	for _, r := range res {
		out = append(out, r...)
	}
	return out
}

// readEnvFile reads a systemd EnvironmentFile: KEY=VALUE lines, # and ;
// comments, values optionally in single or double quotes. A missing file
// is no overrides (the unit's EnvironmentFile=- is optional too).
func readEnvFile(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("environment file: %w", err)
	}
	return parseEnv(b), nil
}

// parseEnv parses EnvironmentFile text; lines that are not KEY=VALUE are
// ignored, as systemd does.
func parseEnv(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\"'") {
			continue
		}
		v = strings.TrimSpace(v)
		if n := len(v); n >= 2 && (v[0] == '"' && v[n-1] == '"' || v[0] == '\'' && v[n-1] == '\'') {
			v = v[1 : n-1]
		}
		out[k] = v
	}
	return out
}
