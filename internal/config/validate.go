package config

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"anprd/internal/plate"
)

// idPattern is the charset for site, device and lane ids: they become MQTT
// topic levels and file names, so no wildcards, separators or spaces.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

const idRule = "must be 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"

var videoDevice = regexp.MustCompile(`^/dev/video[0-9]+$`)

var (
	brokerSchemes    = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}
	tlsBrokerSchemes = []string{"ssl", "tls", "mqtts", "wss"}
)

// Limits. Each is where a value stops being plausible for a gate box, not a
// hard technical limit, except where the comment says so.
const (
	maxThreads     = 64
	minKeepalive   = Duration(5 * time.Second)
	maxKeepalive   = Duration(10 * time.Minute)
	minHeartbeat   = Duration(5 * time.Second)
	maxHeartbeat   = Duration(time.Hour)
	minCommandAge  = Duration(5 * time.Second)
	maxCommandAge  = Duration(time.Hour)
	minOutbox      = 100
	maxOutbox      = 10000000
	minRetention   = Duration(time.Hour)
	maxEvidence    = Duration(30 * day)
	maxPassages    = Duration(90 * day)
	maxDebounce    = Duration(time.Second)
	maxClientIDLen = 65535 // MQTT's string length limit
	minMaxStay     = Duration(time.Hour)
	maxMaxStay     = Duration(365 * day)
	minPulse       = Duration(50 * time.Millisecond)
	maxPulse       = Duration(5 * time.Second)
	minClose       = Duration(2 * time.Second)
	maxClose       = Duration(10 * time.Minute)
	minConfirm     = Duration(time.Second)
	maxConfirm     = Duration(2 * time.Minute)
)

// actions are what a lane policy may say for a classification.
var actions = []string{"open", "deny", "open_charge"}

// Validate checks everything and returns errors.Join of all problems found,
// each "<key>: <why>" with keys written like lanes[1].gate.safety_loop. It
// fills in Site.Location and the Chip of gate lines that name none.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, problem(key, format, args...))
	}

	switch c.Version {
	case Version:
	case 0:
		add("version", "missing; this anprd reads version %d", Version)
	default:
		add("version", "%d is not supported; this anprd reads version %d", c.Version, Version)
	}

	c.validateSite(add)

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if !slices.Contains([]string{"auto", "json", "console"}, c.Log.Format) {
		add("log.format", "%q is not one of auto, json, console", c.Log.Format)
	}

	checkAbs(add, "state.dir", c.State.Dir)
	if err := checkHostPort(c.Status.Listen); err != nil {
		add("status.listen", "%q %v, e.g. 127.0.0.1:9810", c.Status.Listen, err)
	}
	c.validateStatus(add)

	checkAbs(add, "reader.onnxruntime_library", c.Reader.ONNXRuntimeLibrary)
	checkAbs(add, "reader.models_dir", c.Reader.ModelsDir)
	if c.Reader.Threads < 1 || c.Reader.Threads > maxThreads {
		add("reader.threads", "%d is out of range 1..%d", c.Reader.Threads, maxThreads)
	}

	c.validateMQTT(add)

	checkRange(add, "retention.evidence", c.Retention.Evidence, minRetention, maxEvidence,
		"; Norwegian guidance (Datatilsynet) is to delete camera recordings after at most 7 days unless they are needed for a specific case")
	checkRange(add, "retention.passages", c.Retention.Passages, minRetention, maxPassages, "")

	c.validateAccess(add)
	c.validateLanes(add)

	return errors.Join(errs...)
}

type addFunc func(key, format string, args ...any)

func (c *Config) validateSite(add addFunc) {
	checkID(add, "site.id", c.Site.ID)
	checkID(add, "site.device", c.Site.Device)
	switch tz := c.Site.TimeZone; tz {
	case "", "Local":
		// The box's own zone is whatever the image shipped with; permit
		// validity is local time at the garage, so it must be named.
		add("site.timezone", "must name the garage's zone, e.g. Europe/Oslo or Europe/Stockholm")
	default:
		loc, err := time.LoadLocation(tz)
		if err != nil {
			add("site.timezone", "%q is not a known time zone; write e.g. Europe/Oslo or Europe/Stockholm", tz)
			break
		}
		c.Site.Location = loc
	}
}

func (c *Config) validateAccess(add addFunc) {
	a := &c.Access
	// The central system's ids, not ours: any text a bbolt key and a log
	// line can carry.
	checkText(add, "access.facility", a.Facility, true)
	if !slices.Contains([]string{PassbackOff, PassbackSoft, PassbackHard}, a.AntiPassback) {
		add("access.anti_passback", "%q is not one of off, soft, hard", a.AntiPassback)
	}
	checkRange(add, "access.max_stay", a.MaxStay, minMaxStay, maxMaxStay, "")
	unit := func(key string, v *float64) bool {
		if v != nil && !(*v >= 0 && *v <= 1) { // also catches NaN
			add(key, "%v is out of range 0..1", *v)
			return false
		}
		return v != nil
	}
	okMin := unit("access.min_confidence", a.MinConfidence)
	okNear := unit("access.near_match_confidence", a.NearMatchConfidence)
	if okMin && okNear && *a.NearMatchConfidence < *a.MinConfidence {
		add("access.near_match_confidence", "%v is below access.min_confidence (%v); a near match needs a surer read than an exact one",
			*a.NearMatchConfidence, *a.MinConfidence)
	}
}

// checkText: required (if so), at most 128 bytes, no control characters.
func checkText(add addFunc, key, s string, required bool) {
	switch {
	case s == "" && required:
		add(key, "required")
	case len(s) > 128:
		add(key, "is longer than 128 bytes")
	case !utf8.ValidString(s) || strings.ContainsFunc(s, isControl):
		add(key, "%q has control characters", s)
	}
}

func validatePolicy(add addFunc, key string, p *LanePolicy) {
	ov := p.Overrides()
	names := make([]string, 0, len(ov))
	for name := range ov {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		a := ov[name]
		switch {
		case !slices.Contains(actions, a):
			add(key+"."+name, "%q is not open, deny or open_charge", a)
		case name == "ambiguous" && a != "deny":
			add(key+"."+name, "must be deny: a read that could be several plates is never opened on")
		}
	}
}

func (c *Config) validateMQTT(add addFunc) {
	m := &c.MQTT
	tls, schemeOK := false, false
	if m.Broker == "" {
		add("mqtt.broker", "required, e.g. tcp://127.0.0.1:1883 or ssl://mqtt.example.net:8883")
	} else if err := checkBroker(m.Broker); err != nil {
		add("mqtt.broker", "%v", err)
	} else {
		u, _ := url.Parse(m.Broker)
		tls, schemeOK = slices.Contains(tlsBrokerSchemes, u.Scheme), true
	}

	// The default is built from the site ids, which are checked above;
	// reporting it too would be the same mistake twice.
	derived := m.ClientID == "anprd-"+c.Site.ID+"-"+c.Site.Device
	if !derived && (m.ClientID == "" || len(m.ClientID) > maxClientIDLen || strings.ContainsFunc(m.ClientID, isControl) || strings.ContainsRune(m.ClientID, ' ')) {
		add("mqtt.client_id", "%q must be non-empty text without spaces or control characters", m.ClientID)
	}

	if m.PasswordFile != "" && m.Username == "" {
		add("mqtt.password_file", "set without mqtt.username; the broker needs both")
	}
	if m.CertFile != "" && m.KeyFile == "" {
		add("mqtt.cert_file", "set without mqtt.key_file; a client certificate needs its key")
	}
	if m.KeyFile != "" && m.CertFile == "" {
		add("mqtt.key_file", "set without mqtt.cert_file; a client key needs its certificate")
	}
	for _, f := range []struct{ key, path string }{
		{"mqtt.password_file", m.PasswordFile},
		{"mqtt.ca_file", m.CAFile},
		{"mqtt.cert_file", m.CertFile},
		{"mqtt.key_file", m.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if f.key != "mqtt.password_file" && schemeOK && !tls {
			add(f.key, "set, but the broker %s does not use TLS; use ssl://, tls://, mqtts:// or wss://, or remove %s", m.Broker, f.key)
		}
		if !filepath.IsAbs(f.path) {
			add(f.key, "%q must be an absolute path", f.path)
			continue
		}
		if err := checkReadable(f.path); err != nil {
			add(f.key, "%v", err)
		}
	}

	if err := checkTopicPrefix(m.TopicPrefix); err != nil {
		add("mqtt.topic_prefix", "%q %v", m.TopicPrefix, err)
	}
	checkRange(add, "mqtt.keepalive", m.Keepalive, minKeepalive, maxKeepalive, "")
	if m.Keepalive%Duration(time.Second) != 0 {
		add("mqtt.keepalive", "%v must be whole seconds (MQTT counts keepalive in seconds)", m.Keepalive)
	}

	if m.CentralKeyFile != "" {
		if !filepath.IsAbs(m.CentralKeyFile) {
			add("mqtt.central_key_file", "%q must be an absolute path", m.CentralKeyFile)
		} else if err := checkReadable(m.CentralKeyFile); err != nil {
			add("mqtt.central_key_file", "%v", err)
		} else if err := checkEd25519PublicKey(m.CentralKeyFile); err != nil {
			add("mqtt.central_key_file", "%v", err)
		}
	}
	checkRange(add, "mqtt.heartbeat", m.Heartbeat, minHeartbeat, maxHeartbeat, "")
	checkRange(add, "mqtt.command_max_age", m.CommandMaxAge, minCommandAge, maxCommandAge,
		"; a command is only good for the moment it was given")
	if m.OutboxMaxPassages < minOutbox || m.OutboxMaxPassages > maxOutbox {
		add("mqtt.outbox_max_passages", "%d is out of range %d..%d", m.OutboxMaxPassages, minOutbox, maxOutbox)
	}
	if err := checkTopicPrefix(m.HomeAssistant.DiscoveryPrefix); err != nil {
		add("mqtt.home_assistant.discovery_prefix", "%q %v", m.HomeAssistant.DiscoveryPrefix, err)
	}
	if !slices.Contains([]string{OutboxDropOldest, OutboxRefuseNew}, m.OutboxWhenFull) {
		add("mqtt.outbox_when_full", "%q is not drop_oldest or refuse_new", m.OutboxWhenFull)
	}
}

// checkEd25519PublicKey reads path as the PEM "PUBLIC KEY" of an Ed25519
// key, as anprctl keys gen writes it, so that a wrong file (the private
// key, a certificate) stops the daemon at start rather than making it
// refuse every signed message.
func checkEd25519PublicKey(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return pathErr(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return fmt.Errorf("%s is not PEM; it must hold the central system's Ed25519 PUBLIC KEY", path)
	}
	if blk.Type != "PUBLIC KEY" {
		return fmt.Errorf("%s holds a %s; it must hold the central system's Ed25519 PUBLIC KEY (never the private key)", path, blk.Type)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if _, ok := k.(ed25519.PublicKey); !ok {
		return fmt.Errorf("%s holds a %T public key, not Ed25519", path, k)
	}
	return nil
}

func checkBroker(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return fmt.Errorf("%q must be a URL such as tcp://127.0.0.1:1883", s)
	}
	if !slices.Contains(brokerSchemes, u.Scheme) {
		return fmt.Errorf("scheme %q is not one of %s", u.Scheme, strings.Join(brokerSchemes, ", "))
	}
	if u.User != nil {
		// The password would then sit in a world-readable config and in logs.
		return fmt.Errorf("credentials in the URL are not allowed; use mqtt.username and mqtt.password_file")
	}
	if err := checkHostPort(u.Host); err != nil || u.Hostname() == "" {
		return fmt.Errorf("%q needs host:port, e.g. %s://127.0.0.1:1883", s, u.Scheme)
	}
	if u.Path != "" && u.Path != "/" && u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("%q has a path; only ws:// and wss:// brokers take one", s)
	}
	return nil
}

func checkTopicPrefix(p string) error {
	switch {
	case p == "":
		return errors.New("must not be empty")
	case strings.ContainsAny(p, "+#"):
		return errors.New("must not contain the MQTT wildcards + or #")
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		return errors.New("must not start or end with '/'")
	case strings.Contains(p, "//"):
		return errors.New("must not have an empty level ('//')")
	case strings.HasPrefix(p, "$"):
		return errors.New("must not start with '$' (reserved for the broker, e.g. $SYS)")
	case !utf8.ValidString(p) || strings.ContainsFunc(p, isControl):
		return errors.New("must not contain control characters")
	}
	return nil
}

func (c *Config) validateLanes(add addFunc) {
	if len(c.Lanes) == 0 {
		add("lanes", "at least one lane is required")
		return
	}
	ids := map[string]int{}
	// usedBy maps a GPIO line to the key that uses it: two roles on one line
	// would make the daemon read a relay as a loop, or drive two gates at once.
	usedBy := map[string]string{}
	for i := range c.Lanes {
		l := &c.Lanes[i]
		key := fmt.Sprintf("lanes[%d]", i)

		checkID(add, key+".id", l.ID)
		if l.ID != "" {
			if j, dup := ids[l.ID]; dup {
				add(key+".id", "%q is used by lanes[%d] too", l.ID, j)
			} else {
				ids[l.ID] = i
			}
		}
		switch l.Direction {
		case DirectionEntry, DirectionExit:
		case "":
			add(key+".direction", "required: entry or exit")
		default:
			add(key+".direction", "%q is not entry or exit", l.Direction)
		}

		checkCamera(add, key+".camera", l.Camera)
		checkText(add, key+".zone", l.Zone, false)
		validatePolicy(add, key+".policy", &l.Policy)
		checkRange(add, key+".evidence_wait", l.EvidenceWait, Duration(time.Second), Duration(time.Minute), "")

		switch l.Mode {
		case ModeBarrier:
			if l.Gate == nil {
				add(key+".gate", "required for a barrier lane (or set mode: free-flow)")
			}
		case ModeFreeFlow:
			if l.Gate != nil {
				add(key+".gate", "a free-flow lane has no barrier; remove gate or set mode: barrier")
			}
		default:
			add(key+".mode", "%q is not barrier or free-flow", l.Mode)
		}
		if l.Gate != nil {
			validateGate(add, key+".gate", l.Gate, usedBy)
		}
	}
}

func checkCamera(add addFunc, key string, cam Camera) {
	s := cam.Source
	switch sourceKind(s) {
	case sourceNone:
		add(key+".source", "required: an rtsp:// or http(s):// URL, /dev/videoN, a video file or a folder of images")
	case sourceUnknown:
		add(key+".source", "%q is not an rtsp://, rtsps://, http:// or https:// URL", s)
	case sourceRTSP, sourceHTTP:
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			add(key+".source", "%q is not a URL with a host", s)
		}
	case sourceDevice:
		if !videoDevice.MatchString(s) {
			add(key+".source", "%q is not a video device; write /dev/videoN", s)
		}
	case sourceFile:
		// Not checked for existence: replay files and cameras may come later.
		if strings.ContainsFunc(s, isControl) {
			add(key+".source", "%q has control characters", s)
		}
	}
	if cam.RTSPTransport != "tcp" && cam.RTSPTransport != "udp" {
		add(key+".rtsp_transport", "%q is not tcp or udp", cam.RTSPTransport)
	}
	if w := cam.MinPlateWidth; w < 40 || w > 4000 {
		add(key+".min_plate_width", "%d pixels is outside 40..4000; narrower plates cannot be read", w)
	}
	if !slices.Contains(Recognisers, cam.Recogniser) {
		add(key+".recogniser", "%q is not one of %s", cam.Recogniser, strings.Join(Recognisers, ", "))
	}
	for i, c := range cam.Countries {
		k := fmt.Sprintf("%s.countries[%d]", key, i)
		switch up := plate.Country(strings.ToUpper(string(c))); {
		case plate.Known(c):
			if j := slices.Index(cam.Countries, c); j < i {
				add(k, "%s is listed twice (first at countries[%d])", c, j)
			}
		case plate.Known(up):
			add(k, "%q is not a country code; write %s", c, up)
		default:
			add(k, "%q is not a country anprd knows plates of (ISO 3166 codes such as NO, SE, DE, GB; docs/plates.md lists them)", c)
		}
	}
	if n := len(cam.ROI); n > 0 && n < 3 {
		add(key+".roi", "a region needs at least 3 points, got %d", n)
	}
	for i, p := range cam.ROI {
		if p[0] < 0 || p[1] < 0 || p[0] > 16384 || p[1] > 16384 {
			add(fmt.Sprintf("%s.roi[%d]", key, i), "[%d, %d] is not a pixel of a frame", p[0], p[1])
		}
	}
}

type source int

const (
	sourceNone source = iota
	sourceUnknown
	sourceRTSP
	sourceHTTP
	sourceDevice
	sourceFile
)

func sourceKind(s string) source {
	if s == "" {
		return sourceNone
	}
	if scheme, _, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case "rtsp", "rtsps":
			return sourceRTSP
		case "http", "https":
			return sourceHTTP
		}
		return sourceUnknown
	}
	if strings.HasPrefix(s, "/dev/") {
		return sourceDevice
	}
	return sourceFile
}

func validateGate(add addFunc, key string, g *Gate, usedBy map[string]string) {
	if err := checkChip(g.Chip); err != nil {
		add(key+".chip", "%v", err)
	}
	if g.Open == nil {
		add(key+".open", "required: the relay output that opens the barrier")
	}
	if g.SafetyLoop == nil {
		add(key+".safety_loop", "required: the loop under the arm, so the barrier never closes on a car")
	}
	if g.OpenMode != OpenPulse && g.OpenMode != OpenHeld {
		add(key+".open_mode", "%q is not pulse or held", g.OpenMode)
	}
	if g.FailMode != FailSecure && g.FailMode != FailOpen {
		add(key+".fail_mode", "%q is not secure or open", g.FailMode)
	}
	checkRange(add, key+".pulse", g.Pulse, minPulse, maxPulse, "")
	checkRange(add, key+".close_timeout", g.CloseTimeout, minClose, maxClose, "")
	checkRange(add, key+".confirm_timeout", g.ConfirmTimeout, minConfirm, maxConfirm, "")
	for _, r := range []struct {
		key    string
		d      Duration
		lo, hi time.Duration
	}{
		{"travel", g.Travel, 500 * time.Millisecond, 30 * time.Second},
		{"settle", g.Settle, 100 * time.Millisecond, 5 * time.Second},
		{"safety_alarm_after", g.SafetyAlarmAfter, 10 * time.Second, 30 * time.Minute},
		{"read_timeout", g.ReadTimeout, time.Second, 30 * time.Second},
		{"read_window", g.ReadWindow, 500 * time.Millisecond, 30 * time.Second},
		{"manual_read_window", g.ManualReadWindow, 10 * time.Second, 10 * time.Minute},
		{"release_after", g.ReleaseAfter, time.Minute, 2 * time.Hour},
	} {
		checkRange(add, key+"."+r.key, r.d, Duration(r.lo), Duration(r.hi), "")
	}
	if g.ReleaseAfter <= g.CloseTimeout && g.ReleaseAfter >= Duration(time.Minute) {
		add(key+".release_after", "%v is not longer than close_timeout (%v): a vehicle would lose its place while the barrier waits for it", g.ReleaseAfter, g.CloseTimeout)
	}
	for _, gl := range g.lines() {
		if gl.line == nil {
			continue
		}
		lkey, l := key+"."+gl.key, gl.line
		if l.Chip == "" {
			l.Chip = g.Chip
		} else if err := checkChip(l.Chip); err != nil {
			add(lkey+".chip", "%v", err)
		}
		switch {
		case l.Offset < -1 || l.Offset > maxLineOffset:
			add(lkey, "line offset %d is out of range 0..%d", l.Offset, maxLineOffset)
			continue
		case l.Offset == -1:
			if err := checkLineName(l.Name); err != nil {
				add(lkey, "%v", err)
				continue
			}
		case l.Name != "":
			add(lkey, "has both offset %d and name %q; give one", l.Offset, l.Name)
			continue
		}
		if gl.output && l.Debounce != 0 {
			add(lkey+".debounce", "%s is an output; debounce is for inputs, remove it", gl.key)
		} else if l.Debounce < 0 || l.Debounce > maxDebounce {
			add(lkey+".debounce", "%v is out of range 0..%v", l.Debounce, maxDebounce)
		}
		// An offset and a name may still be the same line; only the chip
		// can tell, and this package does not open chips.
		id := strings.TrimPrefix(l.Chip, "/dev/") + ":" + strconv.Itoa(l.Offset)
		if l.Offset < 0 {
			id = strings.TrimPrefix(l.Chip, "/dev/") + ":name:" + l.Name
		}
		if other, dup := usedBy[id]; dup {
			add(lkey, "%v is also used by %s", l, other)
		} else {
			usedBy[id] = lkey
		}
	}
}

func checkChip(chip string) error {
	switch {
	case chip == "":
		return errors.New("required, e.g. gpiochip0")
	case strings.ContainsFunc(chip, func(r rune) bool { return isControl(r) || r == ' ' }):
		return fmt.Errorf("%q is not a chip name such as gpiochip0", chip)
	}
	return nil
}

func checkID(add addFunc, key, id string) {
	switch {
	case id == "":
		add(key, "required; %s", idRule)
	case !idPattern.MatchString(id):
		add(key, "%q %s", id, idRule)
	}
}

func checkAbs(add addFunc, key, path string) {
	switch {
	case path == "":
		add(key, "must not be empty")
	case !filepath.IsAbs(path):
		add(key, "%q must be an absolute path", path)
	}
}

func checkRange(add addFunc, key string, d, lo, hi Duration, why string) {
	switch {
	case d < lo:
		add(key, "%v is less than %v", d, lo)
	case d > hi:
		add(key, "%v is more than %v%s", d, hi, why)
	}
}

// checkHostPort accepts host:port with a numeric port 1-65535; the host may
// be empty (all interfaces).
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("must be host:port")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || !isDigits(port) {
		return fmt.Errorf("has port %q; it must be a number 1-65535", port)
	}
	return nil
}

// checkReadable opens path the way the MQTT client will, so a missing or
// unreadable file stops the daemon at start, not at the first reconnect.
func checkReadable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return pathErr(err)
	}
	// Stat first: opening a FIFO would block, and a directory is a mistake.
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return pathErr(err)
	}
	return f.Close()
}

// pathErr drops the "stat"/"open" verb: "/etc/anprd/ca.pem: no such file or directory".
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// validateStatus checks the networks allowed on the status listener and
// the action token file, and sets Status.AllowNets.
func (c *Config) validateStatus(add func(key, format string, args ...any)) {
	s := &c.Status
	s.AllowNets = nil
	if len(s.Allow) == 0 {
		add("status.allow", "lists no network, so no one could use the status listener; leave the key out for the local networks, or list 0.0.0.0/0 and ::/0 to allow every client")
	}
	for i, a := range s.Allow {
		p, err := parseNet(a)
		if err != nil {
			add(fmt.Sprintf("status.allow[%d]", i), "%q %v", a, err)
			continue
		}
		s.AllowNets = append(s.AllowNets, p)
	}
	if s.ActionTokenFile != "" {
		if !filepath.IsAbs(s.ActionTokenFile) {
			add("status.action_token_file", "%q must be an absolute path", s.ActionTokenFile)
		} else if err := checkReadable(s.ActionTokenFile); err != nil {
			add("status.action_token_file", "%v", err)
		} else if _, err := ReadActionToken(s.ActionTokenFile); err != nil {
			add("status.action_token_file", "%v", err)
		}
	}
}

// parseNet reads a CIDR prefix or a single address (a /32 or /128).
func parseNet(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("is not a network; write e.g. 192.168.10.0/24 or fd00::/8")
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("has host bits set; did you mean %s?", p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.New("is not a network or an address; write e.g. 192.168.10.0/24 or 192.168.10.5")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Bounds of the page's action token.
const (
	minTokenLen = 16
	maxTokenLen = 256
)

// ReadActionToken reads status.action_token_file: the token on its
// first line, at least 16 printable characters without spaces. The
// token itself is never part of an error.
func ReadActionToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", pathErr(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", pathErr(err)
	}
	tok := strings.TrimRight(string(b), "\r\n")
	switch {
	case len(tok) < minTokenLen:
		return "", fmt.Errorf("%s: the token must be at least %d characters (e.g. from: openssl rand -hex 24)", path, minTokenLen)
	case len(tok) > maxTokenLen:
		return "", fmt.Errorf("%s: the token must be at most %d characters on one line", path, maxTokenLen)
	case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return "", fmt.Errorf("%s: the token must be printable ASCII without spaces, on one line", path)
	}
	return tok, nil
}
