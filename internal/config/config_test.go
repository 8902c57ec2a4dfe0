package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
)

// TestGood loads every file in testdata/good; some have extra checks, chiefly
// that the defaults were applied.
func TestGood(t *testing.T) {
	checks := map[string]func(t *testing.T, c *Config){
		"minimal.yaml": func(t *testing.T, c *Config) {
			want := map[string][2]any{
				"site.timezone":        {c.Site.TimeZone, "Europe/Oslo"},
				"site.location":        {c.Site.Location.String(), "Europe/Oslo"},
				"log.level":            {c.Log.Level, "info"},
				"log.format":           {c.Log.Format, "auto"},
				"state.dir":            {c.State.Dir, "/var/lib/anprd"},
				"status.listen":        {c.Status.Listen, "127.0.0.1:9810"},
				"status.allow":         {strings.Join(c.Status.Allow, " "), strings.Join(DefaultStatusAllow, " ")},
				"status.allow nets":    {len(c.Status.AllowNets), len(DefaultStatusAllow)},
				"status.action_token":  {c.Status.ActionTokenFile, ""},
				"reader.onnxruntime":   {c.Reader.ONNXRuntimeLibrary, "/usr/lib/anprd/libonnxruntime.so.1"},
				"reader.models_dir":    {c.Reader.ModelsDir, "/usr/share/anprd/models"},
				"reader.threads":       {c.Reader.Threads, 1},
				"mqtt.client_id":       {c.MQTT.ClientID, "anprd-oslo-sentrum-box-1"},
				"mqtt.topic_prefix":    {c.MQTT.TopicPrefix, "anpr/v1"},
				"mqtt.keepalive":       {c.MQTT.Keepalive, Duration(30 * time.Second)},
				"mqtt.heartbeat":       {c.MQTT.Heartbeat, Duration(time.Minute)},
				"mqtt.command_max_age": {c.MQTT.CommandMaxAge, Duration(time.Minute)},
				"mqtt.evidence":        {*c.MQTT.Evidence, true},
				"mqtt.home_assistant":  {c.MQTT.HomeAssistant, HomeAssistant{DiscoveryPrefix: "homeassistant"}},
				"mqtt.outbox_max":      {c.MQTT.OutboxMaxPassages, 100000},
				"mqtt.outbox_full":     {c.MQTT.OutboxWhenFull, "drop_oldest"},
				"mqtt.central_key":     {c.MQTT.CentralKeyFile, ""},
				"retention.evidence":   {c.Retention.Evidence, Duration(7 * 24 * time.Hour)},
				"retention.passages":   {c.Retention.Passages, Duration(30 * 24 * time.Hour)},
				"lanes[0].mode":        {c.Lanes[0].Mode, "barrier"},
				"lanes[0].rtsp":        {c.Lanes[0].Camera.RTSPTransport, "tcp"},
				"lanes[0].countries":   {fmt.Sprint(c.Lanes[0].Camera.Countries), "[NO SE DK FI DE PL]"},
				"lanes[0].gate.chip":   {c.Lanes[0].Gate.Chip, "gpiochip0"},
				"lanes[0].gate.open":   {c.Lanes[0].Gate.Open.String(), "gpiochip0:17"},
				"lanes[0].gate.loop":   {c.Lanes[0].Gate.SafetyLoop.String(), "gpiochip0:27"},
				"lanes[0].gate.close":  {c.Lanes[0].Gate.Close == nil, true},
				"log level parsed":     {c.LogLevel(), zerolog.InfoLevel},
				"access.facility":      {c.Access.Facility, "oslo-sentrum"},
				"access.anti_passback": {c.Access.AntiPassback, "soft"},
				"access.max_stay":      {c.Access.MaxStay, Duration(7 * 24 * time.Hour)},
				"access.min_conf":      {*c.Access.MinConfidence, 0.5},
				"access.near_match":    {*c.Access.NearMatch, true},
				"access.near_conf":     {*c.Access.NearMatchConfidence, 0.85},
				"lanes[0].zone":        {c.Lanes[0].Zone, ""},
				"lanes[0].policy":      {len(c.Lanes[0].Policy.Overrides()), 0},
				"gate.open_mode":       {c.Lanes[0].Gate.OpenMode, "pulse"},
				"gate.pulse":           {c.Lanes[0].Gate.Pulse, Duration(500 * time.Millisecond)},
				"gate.fail_mode":       {c.Lanes[0].Gate.FailMode, "secure"},
				"gate.close_timeout":   {c.Lanes[0].Gate.CloseTimeout, Duration(30 * time.Second)},
				"gate.confirm_timeout": {c.Lanes[0].Gate.ConfirmTimeout, Duration(10 * time.Second)},
				"gate.simulate":        {c.Lanes[0].Gate.Simulate, false},
				"gate.travel":          {c.Lanes[0].Gate.Travel, Duration(3 * time.Second)},
				"gate.settle":          {c.Lanes[0].Gate.Settle, Duration(500 * time.Millisecond)},
				"gate.safety_alarm":    {c.Lanes[0].Gate.SafetyAlarmAfter, Duration(time.Minute)},
				"gate.read_timeout":    {c.Lanes[0].Gate.ReadTimeout, Duration(4 * time.Second)},
				"gate.read_window":     {c.Lanes[0].Gate.ReadWindow, Duration(3 * time.Second)},
				"gate.manual_window":   {c.Lanes[0].Gate.ManualReadWindow, Duration(2 * time.Minute)},
				"gate.release_after":   {c.Lanes[0].Gate.ReleaseAfter, Duration(10 * time.Minute)},
				"lanes[0].evidence":    {c.Lanes[0].EvidenceWait, Duration(8 * time.Second)},
			}
			for k, v := range want {
				if v[0] != v[1] {
					t.Errorf("%s = %v, want %v", k, v[0], v[1])
				}
			}
		},
		"full.yaml": func(t *testing.T, c *Config) {
			g := c.Lanes[0].Gate
			if got := c.Site.Location.String(); got != "Europe/Stockholm" {
				t.Errorf("location = %s", got)
			}
			if c.LogLevel() != zerolog.DebugLevel {
				t.Errorf("LogLevel() = %v", c.LogLevel())
			}
			if *g.SafetyLoop != (Line{Chip: "gpiochip1", Offset: 19, ActiveLow: true, Debounce: Duration(20 * time.Millisecond)}) {
				t.Errorf("safety_loop = %+v", *g.SafetyLoop)
			}
			if got := g.Fault.String(); got != "gpiochip0:26" {
				t.Errorf("fault = %s, want its own chip gpiochip0:26", got)
			}
			if got := g.Button.String(); got != "gpiochip1:BUTTON_IN" {
				t.Errorf("button = %s", got)
			}
			if want := filepath.Join(filepath.Dir(c.Path), "tls", "client.key"); c.MQTT.KeyFile != want {
				t.Errorf("mqtt.key_file = %s, want %s", c.MQTT.KeyFile, want)
			}
			st := c.Status
			if want := filepath.Join(filepath.Dir(c.Path), "tls", "page.token"); st.ActionTokenFile != want {
				t.Errorf("status.action_token_file = %s, want %s", st.ActionTokenFile, want)
			}
			if got := fmt.Sprint(st.AllowNets); got != "[10.20.0.0/16 192.168.1.7/32 fd12:3456::/32]" {
				t.Errorf("status.allow parsed = %s", got)
			}
			if tok, err := ReadActionToken(st.ActionTokenFile); err != nil || tok != "3f6c0a9e1b7d42c8a5e09d1f6b2c7a4e" {
				t.Errorf("ReadActionToken = %q, %v", tok, err)
			}
			m := c.MQTT
			if m.CentralKeyFile != filepath.Join(filepath.Dir(c.Path), "tls", "central.pub") || m.Heartbeat.String() != "2m" ||
				m.CommandMaxAge.String() != "30s" || *m.Evidence || m.OutboxMaxPassages != 5000 || m.OutboxWhenFull != OutboxRefuseNew {
				t.Errorf("mqtt uplink keys = %+v", m)
			}
			if c.Retention.Evidence.String() != "3d" || c.MQTT.Keepalive.String() != "1m" {
				t.Errorf("durations = %v, %v", c.Retention.Evidence, c.MQTT.Keepalive)
			}
			a := c.Access
			if a.Facility != "SENTRUM-01" || a.AntiPassback != PassbackHard || a.MaxStay.String() != "36h" ||
				*a.MinConfidence != 0.6 || *a.NearMatch || *a.NearMatchConfidence != 0.9 {
				t.Errorf("access = %+v (min %v near %v %v)", a, *a.MinConfidence, *a.NearMatch, *a.NearMatchConfidence)
			}
			if g.OpenMode != OpenHeld || g.Pulse.String() != "300ms" || g.FailMode != FailOpen ||
				g.CloseTimeout.String() != "45s" || g.ConfirmTimeout.String() != "8s" || g.Simulate {
				t.Errorf("gate timing and modes = %+v", *g)
			}
			if g.Travel.String() != "4s" || g.Settle.String() != "800ms" || g.SafetyAlarmAfter.String() != "2m" ||
				g.ReadTimeout.String() != "5s" || g.ReadWindow.String() != "2s" || g.ManualReadWindow.String() != "1m" ||
				g.ReleaseAfter.String() != "20m" || c.Lanes[0].EvidenceWait.String() != "10s" {
				t.Errorf("lane timings = %+v, evidence_wait %v", *g, c.Lanes[0].EvidenceWait)
			}
			if o := c.Lanes[1].Gate; !o.Simulate || o.OpenMode != OpenPulse || o.FailMode != FailSecure {
				t.Errorf("lanes[1].gate = %+v", *o)
			}
			if cs := c.Lanes[0].Camera.Countries; fmt.Sprint(cs) != "[SE NO DE]" {
				t.Errorf("lanes[0].camera.countries = %v", cs)
			}
			if cs := c.Lanes[1].Camera.Countries; cs == nil || len(cs) != 0 {
				t.Errorf("lanes[1].camera.countries = %#v, want the empty list kept (generic format only)", cs)
			}
			if l := c.Lanes[0]; l.Zone != "P2" || !reflect.DeepEqual(l.Policy.Overrides(),
				map[string]string{"unregistered": "open_charge", "permit_in_use": "open_charge"}) {
				t.Errorf("lanes[0] zone %q, policy %v", l.Zone, l.Policy.Overrides())
			}
		},
		"free-flow.yaml": func(t *testing.T, c *Config) {
			for i, l := range c.Lanes {
				if l.Mode != ModeFreeFlow || l.Gate != nil {
					t.Errorf("lanes[%d]: mode %s, gate %v", i, l.Mode, l.Gate)
				}
			}
			if want := filepath.Join(filepath.Dir(c.Path), "replay", "out"); c.Lanes[1].Camera.Source != want {
				t.Errorf("replay source = %s, want %s", c.Lanes[1].Camera.Source, want)
			}
		},
		"lines.yaml": func(t *testing.T, c *Config) {
			want := map[string]string{
				"lanes[0].gate.open":        "gpiochip1:GATE_OPEN",
				"lanes[0].gate.close":       "gpiochip1:18",
				"lanes[0].gate.safety_loop": "gpiochip1:SAFETY_LOOP",
				"lanes[0].gate.arming_loop": "/dev/gpiochip2:22",
				"lanes[1].gate.open":        "gpiochip0:17",
				"lanes[2].gate.open":        "gpiochip3:17",
			}
			got := map[string]string{}
			for i, l := range c.Lanes {
				for _, gl := range l.Gate.lines() {
					if gl.line != nil {
						got[fmtKey(i, gl.key)] = gl.line.String()
					}
				}
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s = %q, want %q", k, got[k], w)
				}
			}
			if o := c.Lanes[0].Gate.Open; o.Offset != -1 || o.Name != "GATE_OPEN" {
				t.Errorf("open by name = %+v", *o)
			}
			if l := c.Lanes[2]; l.Direction != DirectionExit || l.Camera.Source != "rtsp://10.0.0.21/stream1" {
				t.Errorf("merged lane = %+v", l)
			}
		},
	}

	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("good files: %v, %v", files, err)
	}
	for name := range checks {
		if !slices.Contains(files, filepath.Join("testdata/good", name)) {
			t.Errorf("checks for %s, which is not in testdata/good", name)
		}
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(f)
			sum := sha256.Sum256(data)
			if want := "sha256:" + hex.EncodeToString(sum[:]); c.Digest != want {
				t.Errorf("Digest = %s, want %s", c.Digest, want)
			}
			if !filepath.IsAbs(c.Path) || filepath.Base(c.Path) != filepath.Base(f) {
				t.Errorf("Path = %s", c.Path)
			}
			if c.Site.Location == nil {
				t.Error("Validate did not set Site.Location")
			}
			for i, l := range c.Lanes {
				if l.Gate == nil {
					continue
				}
				for _, gl := range l.Gate.lines() {
					if gl.line != nil && gl.line.Chip == "" {
						t.Errorf("%s has no chip after Validate", fmtKey(i, gl.key))
					}
				}
			}
			if check := checks[filepath.Base(f)]; check != nil {
				check(t, c)
			}
		})
	}
}

func fmtKey(lane int, line string) string {
	return fmt.Sprintf("lanes[%d].gate.%s", lane, line)
}

// TestBad loads every testdata/bad/NAME.yaml and wants the error to contain
// testdata/bad/NAME.err. Each bad file has exactly one problem, so the .err
// pins the rule under test and not a neighbour.
func TestBad(t *testing.T) {
	yamls, _ := filepath.Glob("testdata/bad/*.yaml")
	errs, _ := filepath.Glob("testdata/bad/*.err")
	if len(yamls) < 20 {
		t.Fatalf("only %d bad files", len(yamls))
	}
	for _, e := range errs {
		if !slices.Contains(yamls, strings.TrimSuffix(e, ".err")+".yaml") {
			t.Errorf("%s has no .yaml", e)
		}
	}
	for _, f := range yamls {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
			if err != nil {
				t.Fatalf("%s has no .err: %v", f, err)
			}
			sub := strings.TrimSpace(string(want))
			if sub == "" {
				t.Fatalf("%s.err is empty", f)
			}
			c, err := Load(f, nil)
			if err == nil {
				t.Fatalf("loaded without error: %+v", c)
			}
			if c != nil {
				t.Error("Load returned a config with its error")
			}
			msg := err.Error()
			if !strings.Contains(msg, sub) {
				t.Errorf("error\n\t%s\ndoes not contain\n\t%s", msg, sub)
			}
			abs, _ := filepath.Abs(f)
			if !strings.HasPrefix(msg, "config "+abs) {
				t.Errorf("error %q does not name the file", msg)
			}
			if strings.Contains(msg, " problems:\n") {
				t.Errorf("more than one problem in a bad file:\n%s", msg)
			}
		})
	}
}

// TestValidateReportsAll checks that Validate does not stop at the first
// problem: a technician on site should fix the file in one pass.
func TestValidateReportsAll(t *testing.T) {
	c, err := Parse([]byte(`
version: 1
site: {id: oslo, device: box-1}
log: {level: verbose}
lanes:
  - id: in-1
    direction: entry
    camera: {source: /dev/video0}
    gate: {open: 17}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate() = %v, want a joined error", err)
	}
	want := []string{"log.level: ", "mqtt.broker: required", "lanes[0].gate.safety_loop: required"}
	if got := j.Unwrap(); len(got) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
}

// TestParseReportsAllUnknownKeys: every unknown key is listed, not just the first.
func TestParseReportsAllUnknownKeys(t *testing.T) {
	_, err := Parse([]byte("version: 1\nsite: {nmae: x}\nfoo: 1\nlanes:\n  - camera: {sauce: x}\n"))
	want := []string{"site.nmae: unknown key (line 2)", "foo: unknown key (line 3)", "lanes[0].camera.sauce: unknown key (line 5)"}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	base := func() *Config {
		c, err := Parse([]byte("version: 1\n"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name string
		env  map[string]string
		want func(c *Config)
	}{
		{"nil getenv", nil, func(*Config) {}},
		{"empty values do not override", map[string]string{"ANPRD_STATE_DIR": "", "ANPRD_LOG_LEVEL": ""}, func(*Config) {}},
		{"all", map[string]string{
			"ANPRD_STATE_DIR":           "/srv/anprd",
			"ANPRD_STATUS_LISTEN":       "0.0.0.0:9000",
			"ANPRD_LOG_LEVEL":           "debug",
			"ANPRD_LOG_FORMAT":          "json",
			"ANPRD_ONNXRUNTIME_LIBRARY": "/opt/ort/libonnxruntime.so",
			"ANPRD_MODELS_DIR":          "/opt/models",
			"ANPRD_SITE_ID":             "not-an-override",
		}, func(c *Config) {
			c.State.Dir = "/srv/anprd"
			c.Status.Listen = "0.0.0.0:9000"
			c.Log.Level = "debug"
			c.Log.Format = "json"
			c.Reader.ONNXRuntimeLibrary = "/opt/ort/libonnxruntime.so"
			c.Reader.ModelsDir = "/opt/models"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := base(), base()
			var getenv func(string) string
			if tt.env != nil {
				getenv = func(k string) string { return tt.env[k] }
			}
			got.ApplyEnv(getenv)
			tt.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}

	// Every documented variable must change something, and only one thing.
	for _, e := range EnvOverrides {
		if e.Help == "" {
			t.Errorf("%s has no help", e.Name)
		}
		c := base()
		c.ApplyEnv(func(k string) string {
			if k == e.Name {
				return "/changed"
			}
			return ""
		})
		if n := countDiffs(reflect.ValueOf(*base()), reflect.ValueOf(*c)); n != 1 {
			t.Errorf("%s changed %d fields, want 1", e.Name, n)
		}
	}
}

// countDiffs counts differing string leaves in two configs.
func countDiffs(a, b reflect.Value) int {
	switch a.Kind() {
	case reflect.Struct:
		n := 0
		for i := range a.NumField() {
			n += countDiffs(a.Field(i), b.Field(i))
		}
		return n
	case reflect.String:
		if a.String() != b.String() {
			return 1
		}
	}
	return 0
}

func TestLoadResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"secret/mqtt.pass", "secret/ca.pem", "secret/client.pem", "secret/client.key"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := []byte(`version: 1
site: {id: s, device: d}
state: {dir: state}
reader:
  onnxruntime_library: lib/libonnxruntime.so.1
  models_dir: /abs/models
mqtt:
  broker: tls://mqtt.example.net:8883
  username: u
  password_file: secret/mqtt.pass
  ca_file: ./secret/ca.pem
  cert_file: secret/../secret/client.pem
  key_file: secret/client.key
lanes:
  - id: in
    direction: entry
    mode: free-flow
    camera: {source: replay/in}
  - id: out
    direction: exit
    mode: free-flow
    camera: {source: rtsp://cam/out}
`)
	path := filepath.Join(dir, "anprd.yaml")
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ANPRD_MODELS_DIR": "env-models"}
	c, err := Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ key, got, want string }{
		{"path", c.Path, path},
		{"state.dir", c.State.Dir, dir + "/state"},
		{"reader.onnxruntime_library", c.Reader.ONNXRuntimeLibrary, dir + "/lib/libonnxruntime.so.1"},
		{"reader.models_dir (from env)", c.Reader.ModelsDir, dir + "/env-models"},
		{"mqtt.password_file", c.MQTT.PasswordFile, dir + "/secret/mqtt.pass"},
		{"mqtt.ca_file", c.MQTT.CAFile, dir + "/secret/ca.pem"},
		{"mqtt.cert_file", c.MQTT.CertFile, dir + "/secret/client.pem"},
		{"mqtt.key_file", c.MQTT.KeyFile, dir + "/secret/client.key"},
		{"lanes[0].camera.source", c.Lanes[0].Camera.Source, dir + "/replay/in"},
		{"lanes[1].camera.source", c.Lanes[1].Camera.Source, "rtsp://cam/out"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %s, want %s", tt.key, tt.got, tt.want)
		}
	}

	// Parse alone leaves them relative, and Validate will not accept that.
	p, err := Parse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), `state.dir: "state" must be an absolute path`) {
		t.Errorf("Validate of relative state.dir = %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.yaml"), "no such file or directory"},
		{big, "larger than"},
		{dir, "is a directory"},
	} {
		if _, err := Load(tt.path, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%s) = %v, want %q", tt.path, err, tt.want)
		}
	}
}

func TestExampleConfig(t *testing.T) {
	c, err := Load("../../configs/anprd.example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Dir != defaultStateDir || c.Reader.ONNXRuntimeLibrary != defaultONNXRuntime || c.Reader.ModelsDir != defaultModelsDir {
		t.Errorf("the example's paths are not the packaged defaults: %+v %+v", c.State, c.Reader)
	}
	if len(c.Lanes) != 2 || c.Lanes[0].Direction != DirectionEntry || c.Lanes[1].Direction != DirectionExit {
		t.Errorf("the example should have an entrance and an exit: %+v", c.Lanes)
	}
	if !slices.Equal(c.Status.Allow, DefaultStatusAllow) {
		t.Errorf("the example's status.allow %v is not the default %v", c.Status.Allow, DefaultStatusAllow)
	}
}

// TestActionTokenNeverInErrors: what is wrong with a token is said
// without the token.
func TestActionTokenNeverInErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tok := range []string{"short-secret", "long secret with spaces 0123456789", strings.Repeat("s3cr3t", 50)} {
		p := filepath.Join(dir, "page.token")
		os.WriteFile(p, []byte(tok+"\n"), 0o600)
		_, err := ReadActionToken(p)
		if err == nil {
			t.Fatalf("token %q accepted", tok)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error shows the token: %v", err)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		str     string
		wantErr string
	}{
		{in: "500ms", want: 500 * time.Millisecond, str: "500ms"},
		{in: "1h30m", want: 90 * time.Minute, str: "1h30m"},
		{in: "1h", want: time.Hour, str: "1h"},
		{in: "10m", want: 10 * time.Minute, str: "10m"},
		{in: "7d", want: 7 * 24 * time.Hour, str: "7d"},
		{in: "48h", want: 48 * time.Hour, str: "2d"},
		{in: "-1d", want: -24 * time.Hour, str: "-1d"},
		{in: "0", want: 0, str: "0s"},
		{in: "1.5s", want: 1500 * time.Millisecond, str: "1.5s"},
		{in: "30", wantErr: `"30" needs a unit`},
		{in: "1.5d", wantErr: "is not a duration"},
		{in: "d", wantErr: "is not a duration"},
		{in: "week", wantErr: "is not a duration"},
		{in: "999999999999d", wantErr: "too long"},
		{in: "[1s]", wantErr: "must be a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d Duration
			err := yaml.Unmarshal([]byte(tt.in), &d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Duration(d) != tt.want || d.String() != tt.str {
				t.Errorf("got %v (%s), want %v (%s)", time.Duration(d), d, tt.want, tt.str)
			}
			out, err := yaml.Marshal(d)
			if err != nil || strings.TrimSpace(string(out)) != tt.str {
				t.Errorf("Marshal = %q, %v", out, err)
			}
		})
	}
}

func TestLine(t *testing.T) {
	tests := []struct {
		in      string
		want    Line
		str     string
		wantErr string
	}{
		{in: "17", want: Line{Offset: 17}, str: "17"},
		{in: `"17"`, want: Line{Offset: 17}, str: "17"},
		{in: "017", want: Line{Offset: 17}, str: "17"},
		{in: "0", want: Line{Offset: 0}, str: "0"},
		{in: "GATE_OPEN", want: Line{Offset: -1, Name: "GATE_OPEN"}, str: "GATE_OPEN"},
		{in: "{line: 5, chip: gpiochip1, active_low: true, debounce: 20ms}",
			want: Line{Chip: "gpiochip1", Offset: 5, ActiveLow: true, Debounce: Duration(20 * time.Millisecond)}, str: "gpiochip1:5"},
		{in: "{line: LOOP, chip: /dev/gpiochip2}", want: Line{Chip: "/dev/gpiochip2", Offset: -1, Name: "LOOP"}, str: "/dev/gpiochip2:LOOP"},
		{in: "-1", wantErr: "out of range"},
		{in: "70000", wantErr: "out of range"},
		{in: "true", wantErr: "must be a line offset or a line name"},
		{in: "1.5", wantErr: "must be a line offset or a line name"},
		{in: `""`, wantErr: "line name is empty"},
		{in: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", wantErr: "longer than"},
		{in: "[1]", wantErr: "must be a line offset"},
		{in: "{chip: gpiochip1}", wantErr: "line: required"},
		{in: "{line: 1, line: 2}", wantErr: "given twice"},
		{in: "{line: 1, active_low: maybe}", wantErr: "active_low: \"maybe\" is not true or false"},
		{in: "{line: 1, debounce: 20}", wantErr: "debounce: \"20\" needs a unit"},
		{in: "{line: 1, chip: [a]}", wantErr: "chip: must be a chip name"},
		{in: "{line: 1, debunce: 1ms}", wantErr: `debunce: unknown key (line 1); did you mean "debounce"?`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var l Line
			err := yaml.Unmarshal([]byte(tt.in), &l)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l != tt.want || l.String() != tt.str {
				t.Errorf("got %+v (%s), want %+v (%s)", l, l, tt.want, tt.str)
			}
			out, err := yaml.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			var back Line
			if err := yaml.Unmarshal(out, &back); err != nil || back != l {
				t.Errorf("round trip through %q = %+v, %v", out, back, err)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	for in, want := range map[string]zerolog.Level{
		"debug": zerolog.DebugLevel, "info": zerolog.InfoLevel, "warn": zerolog.WarnLevel,
		"error": zerolog.ErrorLevel, "bogus": zerolog.InfoLevel,
	} {
		c := &Config{Log: Log{Level: in}}
		if got := c.LogLevel(); got != want {
			t.Errorf("LogLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestErrorsAreKeyErrors: every problem Validate reports is one "<key>: <why>".
func TestErrorsAreKeyErrors(t *testing.T) {
	err := (&Config{Lanes: []Lane{{Gate: &Gate{Open: &Line{Offset: -1}}}}}).Validate()
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate() = %v", err)
	}
	for _, e := range j.Unwrap() {
		var ke *keyError
		if !errors.As(e, &ke) || ke.key == "" {
			t.Errorf("%q does not name its key", e)
		}
	}
}

// TestExampleNamesEveryLaneKey: every key of a lane and of its gate is
// shown in the commented example, with its default and range.
func TestExampleNamesEveryLaneKey(t *testing.T) {
	ex, err := os.ReadFile("../../configs/anprd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[Lane](), reflect.TypeFor[Gate]()} {
		for f := range typ.Fields() {
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !regexp.MustCompile(`(?m)^\s*#?\s*` + regexp.QuoteMeta(key) + `:`).Match(ex) {
				t.Errorf("%s.%s (%s) is not in configs/anprd.example.yaml", typ.Name(), f.Name, key)
			}
		}
	}
}
