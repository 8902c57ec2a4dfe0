// Package config reads and checks anprd's YAML config file: the site, logging,
// local state, the status listener, the plate reader, the MQTT uplink, how long
// personal data is kept, the local access rules (anti-passback, maximum stay,
// how sure a read must be), and each lane's camera, barrier wiring, zone and
// policy overrides.
//
// Load is the whole path from file to a checked *Config: strict decoding (an
// unknown or misspelt key is an error, never silently ignored), defaults, the
// documented environment overrides, relative paths made absolute, then
// Validate, which reports every problem at once and names the key at fault so
// a technician on site can fix the file in one pass.
//
// This package must not act on the config: it opens no camera, GPIO line or
// network connection and starts nothing. Apart from reading the config file it
// only checks that the files the MQTT client will need are readable, and it
// reads the environment only through the getenv passed to Load and ApplyEnv.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"
	// A gate box may run on a minimal image without /usr/share/zoneinfo; the
	// embedded database keeps site.timezone (Europe/Oslo) loadable there.
	_ "time/tzdata"

	"anprd/internal/plate"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
)

// Version is the only config version this anprd reads.
const Version = 1

// Defaults, applied by Parse to keys left out or empty.
const (
	defaultTimeZone        = "Europe/Oslo"
	defaultLogLevel        = "info"
	defaultLogFormat       = "auto"
	defaultStateDir        = "/var/lib/anprd"
	defaultStatusListen    = "127.0.0.1:9810"
	defaultONNXRuntime     = "/usr/lib/anprd/libonnxruntime.so.1"
	defaultModelsDir       = "/usr/share/anprd/models"
	defaultThreads         = 1
	defaultMinPlateWidth   = 120
	defaultTopicPrefix     = "anpr/v1"
	defaultKeepalive       = Duration(30 * time.Second)
	defaultHeartbeat       = Duration(time.Minute)
	defaultCommandMaxAge   = Duration(time.Minute)
	defaultOutboxMax       = 100000
	defaultOutboxFull      = OutboxDropOldest
	defaultDiscoveryPrefix = "homeassistant"
	defaultEvidence        = Duration(7 * day)
	defaultPassages        = Duration(30 * day)
	defaultMode            = ModeBarrier
	defaultRTSPTransport   = "tcp"
	defaultGPIOChip        = "gpiochip0"
	defaultOpenMode        = OpenPulse
	defaultPulse           = Duration(500 * time.Millisecond)
	defaultFailMode        = FailSecure
	defaultCloseTimeout    = Duration(30 * time.Second)
	defaultConfirmTimeout  = Duration(10 * time.Second)
	defaultTravel          = Duration(3 * time.Second)
	defaultSettle          = Duration(500 * time.Millisecond)
	defaultSafetyAlarm     = Duration(time.Minute)
	defaultReadTimeout     = Duration(4 * time.Second)
	defaultReadWindow      = Duration(3 * time.Second)
	defaultManualWindow    = Duration(2 * time.Minute)
	defaultReleaseAfter    = Duration(10 * time.Minute)
	defaultEvidenceWait    = Duration(8 * time.Second)
	defaultAntiPassback    = PassbackSoft
	defaultMaxStay         = Duration(7 * day)
	defaultMinConf         = 0.5
	defaultNearMatchConf   = 0.85
)

// Anti-passback modes, as written in the file.
const (
	PassbackOff  = "off"
	PassbackSoft = "soft"
	PassbackHard = "hard"
)

// What gives way when the outbox is full, as written in the file.
const (
	OutboxDropOldest = "drop_oldest"
	OutboxRefuseNew  = "refuse_new"
)

// How a barrier's open output is driven, and what a barrier does on a
// fault, as written in the file.
const (
	OpenPulse  = "pulse" // pulsed to open; the close output, if any, pulsed to close
	OpenHeld   = "held"  // held while the barrier is to be open; released to close
	FailSecure = "secure"
	FailOpen   = "open"
)

// Lane directions and modes, as written in the file.
const (
	DirectionEntry = "entry"
	DirectionExit  = "exit"
	ModeBarrier    = "barrier"
	ModeFreeFlow   = "free-flow"
)

// maxFileSize bounds what Load reads: a config is a few kilobytes, and a
// mistaken path (a video, /dev/zero) must fail fast rather than fill memory.
const maxFileSize = 1 << 20

// Config is the whole config file.
type Config struct {
	Version   int       `yaml:"version"`
	Site      Site      `yaml:"site"`
	Log       Log       `yaml:"log"`
	State     State     `yaml:"state"`
	Status    Status    `yaml:"status"`
	Reader    Reader    `yaml:"reader"`
	MQTT      MQTT      `yaml:"mqtt"`
	Retention Retention `yaml:"retention"`
	Access    Access    `yaml:"access"`
	Lanes     []Lane    `yaml:"lanes"`

	Path   string `yaml:"-"` // file it was loaded from (absolute)
	Digest string `yaml:"-"` // "sha256:<hex>" of the file's bytes
}

// Site says where this box is.
type Site struct {
	ID       string         `yaml:"id"`       // required; [a-z0-9][a-z0-9_-]{0,63} (used in MQTT topics)
	Device   string         `yaml:"device"`   // required; same charset; this box's id within the site
	Name     string         `yaml:"name"`     // optional, free text
	TimeZone string         `yaml:"timezone"` // default "Europe/Oslo"; must load with time.LoadLocation
	Location *time.Location `yaml:"-"`        // set by Validate
}

// Log configures the daemon's own log.
type Log struct {
	Level  string `yaml:"level"`  // debug|info|warn|error, default info
	Format string `yaml:"format"` // auto|json|console, default auto (console on a terminal, else JSON)
}

// State is where the daemon keeps its database and evidence.
type State struct {
	Dir string `yaml:"dir"` // default /var/lib/anprd
}

// Status is the local HTTP listener for health, metrics and the
// technicians' page.
type Status struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9810; host:port with a numeric port 1-65535
	// Allow lists the networks (CIDR, or a single address) whose clients
	// may use the listener at all; others get 403. Default: loopback,
	// the private ranges and link-local (DefaultStatusAllow).
	Allow []string `yaml:"allow"`
	// ActionTokenFile holds the token the page's actions (open a barrier,
	// remove a vehicle from presence, ask for a permit resync) need. Unset:
	// the page is read-only.
	ActionTokenFile string `yaml:"action_token_file"`
	// AllowNets is Allow parsed, set by Validate.
	AllowNets []netip.Prefix `yaml:"-"`
}

// DefaultStatusAllow is status.allow when the file gives none: the
// loopback, private (RFC 1918, RFC 4193) and link-local networks.
var DefaultStatusAllow = []string{
	"127.0.0.0/8", "::1/128",
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
	"169.254.0.0/16", "fe80::/10",
}

// Reader configures the plate reader (ONNX Runtime and its models).
type Reader struct {
	ONNXRuntimeLibrary string `yaml:"onnxruntime_library"` // default /usr/lib/anprd/libonnxruntime.so.1
	ModelsDir          string `yaml:"models_dir"`          // default /usr/share/anprd/models
	Threads            int    `yaml:"threads"`             // intra-op threads, default 1, 1..64
}

// MQTT is the uplink to the operator's central system.
type MQTT struct {
	Broker       string   `yaml:"broker"`    // required; URL with scheme tcp|mqtt|ssl|tls|mqtts|ws|wss and host:port
	ClientID     string   `yaml:"client_id"` // default "anprd-<site.id>-<site.device>"
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"` // password read from this file, never inline in config
	CAFile       string   `yaml:"ca_file"`
	CertFile     string   `yaml:"cert_file"` // cert_file and key_file go together
	KeyFile      string   `yaml:"key_file"`
	TopicPrefix  string   `yaml:"topic_prefix"` // default "anpr/v1"; no wildcards + or #, no leading/trailing '/'
	Keepalive    Duration `yaml:"keepalive"`    // default 30s, 5s..10m
	// CentralKeyFile is the central system's Ed25519 public key (PEM,
	// "PUBLIC KEY"). Permit sync and commands are signed with its private
	// key; without this file both are refused.
	CentralKeyFile string `yaml:"central_key_file"`
	// Heartbeat is how often the box publishes its health; default 60s,
	// 5s..1h.
	Heartbeat Duration `yaml:"heartbeat"`
	// CommandMaxAge: a command issued longer ago than this is refused as a
	// replay; default 60s, 5s..1h.
	CommandMaxAge Duration `yaml:"command_max_age"`
	// Evidence: upload the evidence images of each passage as messages of
	// their own. Default true.
	Evidence *bool `yaml:"evidence"`
	// OutboxMaxPassages bounds the passages waiting for upload; default
	// 100000, 100..10000000.
	OutboxMaxPassages int `yaml:"outbox_max_passages"`
	// OutboxWhenFull says what gives way when the outbox is full:
	// drop_oldest (default; the oldest waiting passage is not uploaded,
	// its local copy stays) or refuse_new (the new passage is not kept).
	OutboxWhenFull string `yaml:"outbox_when_full"`
	// HomeAssistant publishes Home Assistant MQTT discovery for the box's
	// lanes, barriers and last plates. Off by default.
	HomeAssistant HomeAssistant `yaml:"home_assistant"`
}

// HomeAssistant is Home Assistant's MQTT discovery (sync/homeassistant).
type HomeAssistant struct {
	Enabled bool `yaml:"enabled"`
	// DiscoveryPrefix is Home Assistant's discovery prefix; default
	// "homeassistant". No wildcards, no leading or trailing '/'.
	DiscoveryPrefix string `yaml:"discovery_prefix"`
}

// Retention says how long personal data is kept on the box.
type Retention struct {
	// Evidence: the evidence images and the plate of a passage that was
	// delivered and needs no follow-up are deleted this long after the
	// passage; those of a passage that leads to a charge or a sanction are
	// kept until the central system acknowledges it (docs/protocol.md, ack),
	// then this long. Default 7d; 1h..30d.
	Evidence Duration `yaml:"evidence"`
	Passages Duration `yaml:"passages"` // local copy of uploaded passages; default 30d; 1h..90d
}

// Access is what the operator sets on site about access decisions; who may
// park comes from the central system.
type Access struct {
	// Facility is the central system's id of the garage the lanes belong
	// to. Default site.id.
	Facility string `yaml:"facility"`
	// AntiPassback: off, soft (allow and flag) or hard (deny and flag) a
	// vehicle entering while recorded inside or leaving while not. Default
	// soft.
	AntiPassback string `yaml:"anti_passback"`
	// MaxStay: a vehicle recorded inside longer stops counting against its
	// permit, so a missed exit read does not block the permit for ever.
	// Default 7d; 1h..365d.
	MaxStay Duration `yaml:"max_stay"`
	// MinConfidence: reads less sure are unreadable. Default 0.5; 0..1.
	MinConfidence *float64 `yaml:"min_confidence"`
	// NearMatch allows a match that needed another reading or a confused
	// character (O/0, B/8, ...), when it is the only one. Default true.
	NearMatch *bool `yaml:"near_match"`
	// NearMatchConfidence: the least read confidence for a near match.
	// Default 0.85; min_confidence..1.
	NearMatchConfidence *float64 `yaml:"near_match_confidence"`
}

// Lane is one entrance or exit with its camera and, for barrier lanes, its gate.
type Lane struct {
	ID        string `yaml:"id"` // required, unique, same charset as site.id
	Name      string `yaml:"name"`
	Direction string `yaml:"direction"` // required: entry|exit
	Mode      string `yaml:"mode"`      // barrier|free-flow, default barrier
	// Zone is the central system's id of the zone the lane leads into;
	// empty for the facility's own entrances and exits.
	Zone   string     `yaml:"zone"`
	Camera Camera     `yaml:"camera"`
	Gate   *Gate      `yaml:"gate"` // required for barrier lanes; must be absent for free-flow lanes
	Policy LanePolicy `yaml:"policy"`
	// EvidenceWait: how long a finished passage waits for its vehicle's
	// final read event, which names the evidence images, before it is
	// recorded without them; default 8s, 1s..1m. The longer, the longer a
	// passage is in hand (in the journal, not yet in the outbox).
	EvidenceWait Duration `yaml:"evidence_wait"`
}

// LanePolicy overrides the lane's default action for a classification:
// open, deny or open_charge. A key left out keeps the default for the
// lane's direction and mode (see configs/anprd.example.yaml). The keys are
// the classifications of internal/decide, one field each so a misspelt one
// is an unknown key.
type LanePolicy struct {
	Permit          string `yaml:"permit,omitempty"`
	Account         string `yaml:"account,omitempty"`
	PermitInUse     string `yaml:"permit_in_use,omitempty"`
	AccountInUse    string `yaml:"account_in_use,omitempty"`
	AwaitingPayment string `yaml:"awaiting_payment,omitempty"`
	Blocked         string `yaml:"blocked,omitempty"`
	Expired         string `yaml:"expired,omitempty"`
	NotYetValid     string `yaml:"not_yet_valid,omitempty"`
	WrongZone       string `yaml:"wrong_zone,omitempty"`
	OutsideHours    string `yaml:"outside_hours,omitempty"`
	Closed          string `yaml:"closed,omitempty"`
	BlockListed     string `yaml:"block_listed,omitempty"`
	Unregistered    string `yaml:"unregistered,omitempty"`
	Unreadable      string `yaml:"unreadable,omitempty"`
	Ambiguous       string `yaml:"ambiguous,omitempty"`
	Passback        string `yaml:"passback,omitempty"`
}

// Overrides returns the overrides set, keyed by classification.
func (p *LanePolicy) Overrides() map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(p).Elem()
	for i, f := range reflect.VisibleFields(v.Type()) {
		if a := v.Field(i).String(); a != "" {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			out[name] = a
		}
	}
	return out
}

// Camera is where a lane's frames come from.
type Camera struct {
	Source        string `yaml:"source"`         // rtsp://, rtsps://, http(s):// (MJPEG), /dev/videoN, a video file or a folder of images (replay)
	RTSPTransport string `yaml:"rtsp_transport"` // tcp|udp, default tcp; only meaningful for rtsp sources
	// ROI is the lane's region of interest in frame pixels, a polygon of
	// at least three [x, y] points; plates are only searched for inside
	// it. Empty: the whole frame.
	ROI [][2]int `yaml:"roi"`
	// MinPlateWidth is the narrowest plate the lane must read, in frame
	// pixels; default 120, 40..4000. The detector sees the frame just
	// large enough for it, so a larger value reads faster.
	MinPlateWidth int `yaml:"min_plate_width"`
	// Recogniser reads the characters of the lines the detector finds:
	// plate+ppocr (default) reads each line with anprd's own plate
	// recogniser (train/) and with PP-OCRv4's general text recogniser and
	// keeps the reading the plate layer is surer of, which reads more real
	// plates than either alone (train/model/MODEL_CARD.md); ppocr or plate
	// use one of them only (plate is the fastest).
	Recogniser string `yaml:"recogniser"`
	// Countries are the plate countries the lane expects, ISO 3166 codes
	// in order of preference (docs/plates.md); default plate's
	// DefaultCountries, NO, SE, DK, FI, DE, PL. An empty list reads every
	// plate with the generic format only.
	Countries []plate.Country `yaml:"countries"`
}

// Recognisers are the values camera.recogniser takes (camera/ocr's names).
var Recognisers = []string{"plate+ppocr", "ppocr", "plate"} // the default first

// Gate is a barrier's GPIO wiring.
type Gate struct {
	Chip         string `yaml:"chip"`          // default chip for the lines below, default "gpiochip0"
	Open         *Line  `yaml:"open"`          // required: the open relay output
	Close        *Line  `yaml:"close"`         // optional close output
	ArmingLoop   *Line  `yaml:"arming_loop"`   // optional input: loop before the barrier
	SafetyLoop   *Line  `yaml:"safety_loop"`   // required input: loop under the arm (the barrier must never close on a car)
	OpenSwitch   *Line  `yaml:"open_switch"`   // optional position feedback
	ClosedSwitch *Line  `yaml:"closed_switch"` // optional
	Fault        *Line  `yaml:"fault"`         // optional barrier fault input
	Button       *Line  `yaml:"button"`        // optional manual open button

	// OpenMode: pulse (default) pulses the open output to open and the
	// close output, if any, to close (without one the barrier closes by
	// itself); held holds the open output while the barrier is to stay
	// open and releases it to close.
	OpenMode string `yaml:"open_mode"`
	// Pulse is the length of an output pulse; default 500ms, 50ms..5s.
	Pulse Duration `yaml:"pulse"`
	// FailMode is what the barrier does on a fault, at start-up when its
	// position cannot be told and when anprd stops: secure (default:
	// closed, never on a vehicle, opened for nobody) or open (opened and
	// left open).
	FailMode string `yaml:"fail_mode"`
	// CloseTimeout: an opening that no vehicle went through closes after
	// this long; default 30s, 2s..10m.
	CloseTimeout Duration `yaml:"close_timeout"`
	// ConfirmTimeout: a position switch that has not confirmed a movement
	// in this time is a fault; default 10s, 1s..2m.
	ConfirmTimeout Duration `yaml:"confirm_timeout"`
	// Travel: where no position switch tells, the arm is taken to be up
	// or down this long after the command; default 3s, 500ms..30s.
	Travel Duration `yaml:"travel"`
	// Settle: the safety loop must stay clear this long before the
	// vehicle counts as through (a trailer's gap is the same vehicle);
	// default 500ms, 100ms..5s.
	Settle Duration `yaml:"settle"`
	// SafetyAlarmAfter: a safety loop occupied this long raises an alarm
	// (the barrier stays up regardless); default 60s, 10s..30m.
	SafetyAlarmAfter Duration `yaml:"safety_alarm_after"`
	// ReadTimeout: a vehicle on the arming loop with no read this long is
	// decided unreadable (an exit lets it out, an entrance keeps it out);
	// default 4s, 1s..30s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// ReadWindow: a read not yet decided on counts for the vehicle that
	// drives onto the arming loop, and for a vehicle through on an opening
	// not its own (a tailgater), if its vehicle is still in view or the
	// read is this recent; default 3s, 500ms..30s.
	ReadWindow Duration `yaml:"read_window"`
	// ManualReadWindow: the passage of a manual opening (button, remote)
	// takes the read of the vehicle that waited from this far back;
	// default 2m, 10s..10m.
	ManualReadWindow Duration `yaml:"manual_read_window"`
	// ReleaseAfter: a vehicle let in that has neither gone through nor
	// seen the barrier close by then counts as not through, and its place
	// in presence is released; default 10m, 1m..2h, and longer than
	// close_timeout.
	ReleaseAfter Duration `yaml:"release_after"`
	// Simulate drives a simulated barrier instead of GPIO lines, for the
	// demo and for trying a box on the bench: the lines above say which
	// lines the simulated barrier has. Never on a real lane.
	Simulate bool `yaml:"simulate"`
}

// gateLine is one of a gate's lines with its key and role.
type gateLine struct {
	key    string
	line   *Line
	output bool
}

// lines lists the gate's lines in a fixed order (the struct's and the
// example's), so a duplicate is always reported at the same key.
func (g *Gate) lines() []gateLine {
	return []gateLine{
		{"open", g.Open, true},
		{"close", g.Close, true},
		{"arming_loop", g.ArmingLoop, false},
		{"safety_loop", g.SafetyLoop, false},
		{"open_switch", g.OpenSwitch, false},
		{"closed_switch", g.ClosedSwitch, false},
		{"fault", g.Fault, false},
		{"button", g.Button, false},
	}
}

// errEmpty is returned for a file with no config in it, which is far more
// likely a truncated or wrong file than a wish for all defaults.
var errEmpty = errors.New("config is empty")

// Parse decodes strictly (unknown keys rejected, a second YAML document
// rejected, empty input rejected) and applies defaults. It does not Validate.
func Parse(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errEmpty
		}
		return nil, syntaxError(err)
	}
	// A second document would be ignored by a plain decode; a file that was
	// concatenated or pasted twice must not half-apply.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err)
	default:
		return nil, fmt.Errorf("line %d: a second YAML document is not allowed; one file holds one config", extra.Line)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, errEmpty
	}

	// Walking the tree first gives errors with the full key path and line,
	// and reports every unknown key instead of only the first.
	if errs := checkNode(doc.Content[0], reflect.TypeFor[Config](), "", map[visit]bool{}); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// KnownFields stays as a second guard should the walk and yaml.v3 ever
	// disagree about what a key means.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	c := new(Config)
	if err := strict.Decode(c); err != nil {
		return nil, err
	}
	c.applyDefaults()
	return c, nil
}

// syntaxError gives a line to yaml.v3 syntax errors on the first line: it
// prints "line N" only when its 0-based line is not 0. Its other errors
// without a line (an unknown anchor) are not about the first line.
func syntaxError(err error) error {
	msg := err.Error()
	rest, ok := strings.CutPrefix(msg, "yaml: ")
	if ok && !strings.HasPrefix(rest, "line ") && !strings.Contains(rest, "anchor") {
		return fmt.Errorf("yaml: line 1: %s", rest)
	}
	return err
}

func (c *Config) applyDefaults() {
	setDefault(&c.Site.TimeZone, defaultTimeZone)
	setDefault(&c.Log.Level, defaultLogLevel)
	setDefault(&c.Log.Format, defaultLogFormat)
	setDefault(&c.State.Dir, defaultStateDir)
	setDefault(&c.Status.Listen, defaultStatusListen)
	if c.Status.Allow == nil {
		c.Status.Allow = append([]string(nil), DefaultStatusAllow...)
	}
	setDefault(&c.Reader.ONNXRuntimeLibrary, defaultONNXRuntime)
	setDefault(&c.Reader.ModelsDir, defaultModelsDir)
	if c.Reader.Threads == 0 {
		c.Reader.Threads = defaultThreads
	}
	setDefault(&c.MQTT.ClientID, "anprd-"+c.Site.ID+"-"+c.Site.Device)
	setDefault(&c.MQTT.TopicPrefix, defaultTopicPrefix)
	if c.MQTT.Keepalive == 0 {
		c.MQTT.Keepalive = defaultKeepalive
	}
	if c.MQTT.Heartbeat == 0 {
		c.MQTT.Heartbeat = defaultHeartbeat
	}
	if c.MQTT.CommandMaxAge == 0 {
		c.MQTT.CommandMaxAge = defaultCommandMaxAge
	}
	if c.MQTT.Evidence == nil {
		c.MQTT.Evidence = ptr(true)
	}
	if c.MQTT.OutboxMaxPassages == 0 {
		c.MQTT.OutboxMaxPassages = defaultOutboxMax
	}
	setDefault(&c.MQTT.OutboxWhenFull, defaultOutboxFull)
	setDefault(&c.MQTT.HomeAssistant.DiscoveryPrefix, defaultDiscoveryPrefix)
	if c.Retention.Evidence == 0 {
		c.Retention.Evidence = defaultEvidence
	}
	if c.Retention.Passages == 0 {
		c.Retention.Passages = defaultPassages
	}
	setDefault(&c.Access.Facility, c.Site.ID)
	setDefault(&c.Access.AntiPassback, defaultAntiPassback)
	if c.Access.MaxStay == 0 {
		c.Access.MaxStay = defaultMaxStay
	}
	if c.Access.MinConfidence == nil {
		c.Access.MinConfidence = ptr(defaultMinConf)
	}
	if c.Access.NearMatch == nil {
		c.Access.NearMatch = ptr(true)
	}
	if c.Access.NearMatchConfidence == nil {
		c.Access.NearMatchConfidence = ptr(defaultNearMatchConf)
	}
	for i := range c.Lanes {
		l := &c.Lanes[i]
		setDefault(&l.Mode, defaultMode)
		setDefault(&l.Camera.RTSPTransport, defaultRTSPTransport)
		setDefault(&l.Camera.Recogniser, Recognisers[0])
		if l.Camera.MinPlateWidth == 0 {
			l.Camera.MinPlateWidth = defaultMinPlateWidth
		}
		if l.Camera.Countries == nil {
			l.Camera.Countries = slices.Clone(plate.DefaultCountries)
		}
		setDuration(&l.EvidenceWait, defaultEvidenceWait)
		if g := l.Gate; g != nil {
			for _, d := range []struct {
				d   *Duration
				def Duration
			}{{&g.Travel, defaultTravel}, {&g.Settle, defaultSettle}, {&g.SafetyAlarmAfter, defaultSafetyAlarm},
				{&g.ReadTimeout, defaultReadTimeout}, {&g.ReadWindow, defaultReadWindow},
				{&g.ManualReadWindow, defaultManualWindow}, {&g.ReleaseAfter, defaultReleaseAfter}} {
				setDuration(d.d, d.def)
			}
			setDefault(&g.Chip, defaultGPIOChip)
			setDefault(&g.OpenMode, defaultOpenMode)
			setDefault(&g.FailMode, defaultFailMode)
			if g.Pulse == 0 {
				g.Pulse = defaultPulse
			}
			if g.CloseTimeout == 0 {
				g.CloseTimeout = defaultCloseTimeout
			}
			if g.ConfirmTimeout == 0 {
				g.ConfirmTimeout = defaultConfirmTimeout
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// setDuration gives an unset (zero) duration its default.
func setDuration(d *Duration, def Duration) {
	if *d == 0 {
		*d = def
	}
}

// Load reads path, Parse, sets Path and Digest, applies env overrides through
// ApplyEnv(getenv), resolves relative paths (state.dir, reader.*, mqtt.*_file
// and file camera sources) against the config file's directory, then Validate.
// getenv may be nil (no overrides).
func Load(path string, getenv func(string) string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	data, err := readFile(abs)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, wrapFile(abs, err)
	}
	sum := sha256.Sum256(data)
	c.Path = abs
	c.Digest = "sha256:" + hex.EncodeToString(sum[:])
	c.ApplyEnv(getenv)
	c.resolvePaths(filepath.Dir(abs))
	if err := c.Validate(); err != nil {
		return nil, wrapFile(abs, err)
	}
	return c, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes; is this the config file?", path, maxFileSize)
	}
	return data, nil
}

// wrapFile names the file; several problems go one per line so each reads on
// its own in a terminal or journal.
func wrapFile(path string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 1 {
		return fmt.Errorf("config %s has %d problems:\n%w", path, len(j.Unwrap()), err)
	}
	return fmt.Errorf("config %s: %w", path, err)
}

// resolvePaths makes relative paths absolute against dir, the config file's
// directory, so the daemon does not depend on its working directory.
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{
		&c.State.Dir,
		&c.Reader.ONNXRuntimeLibrary,
		&c.Reader.ModelsDir,
		&c.MQTT.PasswordFile,
		&c.MQTT.CAFile,
		&c.MQTT.CertFile,
		&c.MQTT.KeyFile,
		&c.MQTT.CentralKeyFile,
		&c.Status.ActionTokenFile,
	} {
		*p = resolve(dir, *p)
	}
	for i := range c.Lanes {
		cam := &c.Lanes[i].Camera
		if sourceKind(cam.Source) == sourceFile {
			cam.Source = resolve(dir, cam.Source)
		}
	}
}

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// LogLevel returns the parsed zerolog level; info if Level is not one that
// Validate accepts.
func (c *Config) LogLevel() zerolog.Level {
	switch c.Log.Level {
	case "debug":
		return zerolog.DebugLevel
	case "warn":
		return zerolog.WarnLevel
	case "error":
		return zerolog.ErrorLevel
	default:
		return zerolog.InfoLevel
	}
}
