package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"anprd/camera/ocr/ocrtest"
	"anprd/gate/gpiocdev"
	"anprd/internal/config"
	"anprd/sync/mqtt/mqtttest"
	"anprd/sync/protocol"

	"gocv.io/x/gocv"
)

// ---- fakes for the edges a test cannot make fail for real

type fakeModels struct{ runtime, check, sessions error }

func (f fakeModels) Runtime(string) (string, error) { return "1.0.0", f.runtime }
func (f fakeModels) Check(string) error             { return f.check }
func (f fakeModels) Sessions(string, int) error     { return f.sessions }

type fakeCamera struct {
	dial  error
	frame error
	dials []string
}

func (f *fakeCamera) Dial(_ context.Context, addr string) error {
	f.dials = append(f.dials, addr)
	return f.dial
}

func (f *fakeCamera) Frame(context.Context, string, string) (int, int, error) {
	if f.frame != nil {
		return 0, 0, f.frame
	}
	return 1920, 1080, nil
}

type fakeGPIO struct {
	chips []string
	lines map[int]gpiocdev.LineState
	err   error
}

func (f fakeGPIO) Chips() []string { return f.chips }
func (f fakeGPIO) Inspect(s gpiocdev.Spec) (gpiocdev.LineState, error) {
	if f.err != nil {
		return gpiocdev.LineState{}, f.err
	}
	if st, ok := f.lines[s.Offset]; ok {
		return st, nil
	}
	return gpiocdev.LineState{Chip: s.Chip, Offset: s.Offset}, nil
}

type fakeClock struct {
	synced bool
	td     map[string]string
	zone   string
}

func (f fakeClock) Kernel() (bool, time.Duration, error) { return f.synced, 3 * time.Millisecond, nil }
func (f fakeClock) Timedated(context.Context) (map[string]string, error) {
	if f.td == nil {
		return nil, errors.New("no timedatectl")
	}
	return f.td, nil
}
func (f fakeClock) Zone() string { return f.zone }

type fakeResolver struct {
	netProbe
	lookup error
}

func (f *fakeResolver) LookupHost(context.Context, string) ([]string, error) {
	return nil, f.lookup
}

// testDoctor is a doctor whose every dependency is a fake that passes.
func testDoctor() *doctor {
	return &doctor{
		loadConfig:    config.Load,
		state:         realState{},
		models:        fakeModels{},
		camera:        &fakeCamera{},
		broker:        &netProbe{},
		gpio:          fakeGPIO{chips: []string{"gpiochip0"}},
		clock:         fakeClock{synced: true, zone: "Europe/Oslo"},
		disk:          func(string) (uint64, uint64, error) { return 50 << 30, 100 << 30, nil },
		unitFile:      "/nonexistent/anprd.service",
		cameraTimeout: 2 * time.Second,
		brokerTimeout: 2 * time.Second,
		minFree:       2 << 30,
	}
}

func want(t *testing.T, f finding, level string, parts ...string) {
	t.Helper()
	if f.Level != level {
		t.Errorf("%s: level %s, want %s: %s (fix: %s)", f.Check, f.Level, level, f.Finding, f.Fix)
	}
	for _, p := range parts {
		if !strings.Contains(f.Finding+" | "+f.Fix, p) {
			t.Errorf("%s: %q lacks %q (fix: %s)", f.Check, f.Finding, p, f.Fix)
		}
	}
	if level != levelOK && level != levelSkip && f.Fix == "" {
		t.Errorf("%s: %s without a fix", f.Check, level)
	}
}

// closedPort is a 127.0.0.1 port nothing listens on (demo.go's freePort).
func closedPort(t *testing.T) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// ---- one check at a time

func TestDoctorBadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "anprd.yaml")
	os.WriteFile(path, []byte("version: 1\nsite: {id: x, device: y}\nmqtt: {broker: tcp://127.0.0.1:1}\nlanes: []\nbogus: 1\n"), 0o600)
	d := testDoctor()
	fs := d.run(context.Background(), path, nil)
	want(t, fs[0], levelFail, "bogus", "anprd -check-config "+path)
	for _, f := range fs[1:8] {
		want(t, f, levelSkip, "needs a valid config")
	}
	var out bytes.Buffer
	if code := report(fs, false, &out); code != 1 {
		t.Errorf("exit %d with a bad config, want 1", code)
	}
	if n := strings.Count(out.String(), "\n"); n != len(fs)+2 {
		t.Errorf("%d lines for %d findings:\n%s", n, len(fs), out.String())
	}
	fs = d.run(context.Background(), filepath.Join(dir, "missing.yaml"), nil)
	want(t, fs[0], levelFail, "no such file", "make install")
}

func TestDoctorModels(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "libonnxruntime.so.1")
	for _, f := range []string{"libonnxruntime.so.1", "ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx", "ppocr_keys_v1.txt", "anprd-plate-rec.onnx"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	r := config.Reader{ONNXRuntimeLibrary: lib, ModelsDir: dir, Threads: 1}
	d := testDoctor()
	want(t, d.checkModels(r), levelOK, "ONNX Runtime 1.0.0")

	missing := r
	missing.ONNXRuntimeLibrary = filepath.Join(dir, "nope.so")
	want(t, d.checkModels(missing), levelFail, "library not found", "reader.onnxruntime_library")

	d.models = fakeModels{runtime: errors.New("libonnxruntime.so.1: wrong ELF class")}
	want(t, d.checkModels(r), levelFail, "does not load", "wrong ELF class", "ldd")

	d.models = fakeModels{sessions: errors.New("protobuf parsing failed")}
	want(t, d.checkModels(r), levelFail, "sessions do not open", "protobuf")

	os.Remove(filepath.Join(dir, "ch_PP-OCRv4_rec_infer.onnx"))
	want(t, d.checkModels(r), levelFail, "model file missing", "reader.models_dir")
}

func TestDoctorCamera(t *testing.T) {
	d := testDoctor()
	cam := &fakeCamera{}
	d.camera = cam
	lane := &config.Lane{ID: "in-1", Camera: config.Camera{Source: "rtsp://admin:secret@cam.local/stream1", RTSPTransport: "tcp"}}
	f := d.checkCamera(context.Background(), lane, stateInfo{})
	want(t, f, levelOK, "1920x1080", "admin:xxxxx@")
	if strings.Contains(f.Finding, "secret") || len(cam.dials) != 1 || cam.dials[0] != "cam.local:554" {
		t.Errorf("finding %q, dials %v: want the password hidden and port 554", f.Finding, cam.dials)
	}

	cam.dial = &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	want(t, d.checkCamera(context.Background(), lane, stateInfo{}), levelFail, "refused", "camera.source")
	cam.dial = &net.DNSError{Err: "no such host", Name: "cam.local", IsNotFound: true}
	want(t, d.checkCamera(context.Background(), lane, stateInfo{}), levelFail, "cannot resolve cam.local")

	cam.dial = nil
	cam.frame = errors.New("source: cannot open rtsp://admin:xxxxx@cam.local/stream1")
	want(t, d.checkCamera(context.Background(), lane, stateInfo{}), levelFail, "no frame", "user and password", "ffprobe")

	lane.Camera.Source = "/dev/video-anprd-test-none"
	want(t, d.checkCamera(context.Background(), lane, stateInfo{}), levelFail, "does not exist", "v4l2-ctl")
	lane.Camera.Source = filepath.Join(t.TempDir(), "clip.mp4")
	want(t, d.checkCamera(context.Background(), lane, stateInfo{}), levelFail, "no such file")
}

func TestDoctorGPIO(t *testing.T) {
	d := testDoctor()
	lane := &config.Lane{ID: "in-1", Gate: &config.Gate{Chip: "gpiochip0",
		Open: &config.Line{Offset: 17}, SafetyLoop: &config.Line{Offset: 27, ActiveLow: true}}}

	d.gpio = fakeGPIO{}
	fs := d.checkGPIO(lane, stateInfo{})
	if len(fs) != 1 {
		t.Fatalf("no chips: %v", fs)
	}
	want(t, fs[0], levelFail, "this machine has no GPIO chip", "gate.simulate")

	d.gpio = fakeGPIO{chips: []string{"gpiochip0"}}
	want(t, d.checkGPIO(lane, stateInfo{})[0], levelOK, "open gpiochip0:17", "safety_loop gpiochip0:27")

	d.gpio = fakeGPIO{chips: []string{"gpiochip0"}, lines: map[int]gpiocdev.LineState{27: {Offset: 27, Used: true, Consumer: "gpio-keys"}}}
	fs = d.checkGPIO(lane, stateInfo{})
	if len(fs) != 1 || fs[0].Check != "gpio in-1 safety_loop" {
		t.Fatalf("one held line: %v", fs)
	}
	want(t, fs[0], levelFail, `held by "gpio-keys"`)

	d.gpio = fakeGPIO{chips: []string{"gpiochip0"}, lines: map[int]gpiocdev.LineState{17: {Offset: 17, Used: true, Consumer: "anprd", Output: true}}}
	want(t, d.checkGPIO(lane, stateInfo{pid: 4242})[0], levelOK, "1 of 2 held by the running anprd (pid 4242)")
	want(t, d.checkGPIO(lane, stateInfo{})[0], levelFail, `held by "anprd"`)

	d.gpio = fakeGPIO{chips: []string{"gpiochip0"}, err: &os.PathError{Op: "open", Path: "/dev/gpiochip0", Err: syscall.EACCES}}
	want(t, d.checkGPIO(lane, stateInfo{})[0], levelFail, "permission denied", "60-anprd.rules")
	d.gpio = fakeGPIO{chips: []string{"gpiochip1"}, err: &os.PathError{Op: "stat", Path: "/dev/gpiochip0", Err: syscall.ENOENT}}
	want(t, d.checkGPIO(lane, stateInfo{})[0], levelFail, "chip gpiochip0 not found (present: gpiochip1)")

	lane.Gate.Simulate = true
	want(t, d.checkGPIO(lane, stateInfo{})[0], levelWarn, "simulated")
}

func TestDoctorClock(t *testing.T) {
	d := testDoctor()
	d.clock = fakeClock{synced: false, td: map[string]string{"NTP": "no", "Timezone": "Europe/Oslo"}}
	fs := d.checkClock(context.Background(), "Europe/Oslo")
	want(t, fs[0], levelFail, "not synchronised", "NTP is off", "timedatectl set-ntp true")
	want(t, fs[1], levelOK, "Europe/Oslo")

	d.clock = fakeClock{synced: true, zone: "Etc/UTC"}
	fs = d.checkClock(context.Background(), "Europe/Stockholm")
	want(t, fs[0], levelOK, "synchronised")
	want(t, fs[1], levelWarn, "Etc/UTC", "timedatectl set-timezone Europe/Stockholm")
}

func TestDoctorDisk(t *testing.T) {
	d := testDoctor()
	dir := filepath.Join(t.TempDir(), "state", "not-yet")
	want(t, d.checkDisk(dir), levelOK, "50.0 GiB free of 100.0 GiB")
	d.disk = func(string) (uint64, uint64, error) { return 1 << 30, 100 << 30, nil }
	want(t, d.checkDisk(dir), levelWarn, "under 2.0 GiB", "retention.evidence")
	d.disk = func(string) (uint64, uint64, error) { return 100 << 20, 100 << 30, nil }
	want(t, d.checkDisk(dir), levelFail, "may soon not be written")
}

func TestDoctorSystemd(t *testing.T) {
	d := testDoctor()
	show := func(p map[string]string) {
		d.systemd = func(context.Context) (map[string]string, error) { return p, nil }
	}
	show(map[string]string{"LoadState": "not-found"})
	want(t, d.checkSystemd(context.Background()), levelFail, "not installed", "make install")
	show(map[string]string{"LoadState": "loaded", "UnitFileState": "disabled", "ActiveState": "inactive", "SubState": "dead"})
	want(t, d.checkSystemd(context.Background()), levelFail, "will not start at boot", "systemctl enable --now anprd")
	show(map[string]string{"LoadState": "loaded", "UnitFileState": "enabled", "ActiveState": "activating", "SubState": "auto-restart"})
	want(t, d.checkSystemd(context.Background()), levelFail, "auto-restart", "journalctl -u anprd")
	show(map[string]string{"LoadState": "loaded", "UnitFileState": "enabled", "ActiveState": "active", "SubState": "running", "MainPID": "812"})
	want(t, d.checkSystemd(context.Background()), levelOK, "enabled, active (running), pid 812")
	d.systemd = nil
	want(t, d.checkSystemd(context.Background()), levelSkip, "no systemctl")
}

func TestDoctorCentralKey(t *testing.T) {
	d := testDoctor()
	dir := t.TempDir()
	want(t, d.checkCentralKey(""), levelFail, "not set", "mqtt.central_key_file")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	os.WriteFile(filepath.Join(dir, "central.pub"), protocol.MarshalPublicKey(pub), 0o644)
	os.WriteFile(filepath.Join(dir, "central.key"), protocol.MarshalPrivateKey(priv), 0o600)
	os.WriteFile(filepath.Join(dir, "junk.pub"), []byte("not a key"), 0o644)
	want(t, d.checkCentralKey(filepath.Join(dir, "central.pub")), levelOK, protocol.KeyID(pub))
	want(t, d.checkCentralKey(filepath.Join(dir, "central.key")), levelFail, "private key", "only the central system's public key")
	want(t, d.checkCentralKey(filepath.Join(dir, "junk.pub")), levelFail, "junk.pub")
}

// TestDoctorStateLock holds the lock as anprd does and checks that doctor
// finds the holder in /proc/locks without taking the lock itself.
func TestDoctorStateLock(t *testing.T) {
	d := testDoctor()
	dir := t.TempDir()
	st, f := d.checkState(dir)
	want(t, f, levelOK, "writable", "anprd is not running")
	if st.pid != 0 {
		t.Errorf("pid %d without a lock", st.pid)
	}
	lf, err := os.OpenFile(filepath.Join(dir, "anprd.lock"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	st, f = d.checkState(dir)
	if st.pid != os.Getpid() {
		t.Fatalf("lock holder %d, want this test's pid %d (%s)", st.pid, os.Getpid(), f.Finding)
	}
	// The test binary is not called anprd: doctor says who holds it.
	want(t, f, levelFail, fmt.Sprintf("locked by pid %d", os.Getpid()), "own state.dir")
	_, f = d.checkState(filepath.Join(dir, "anprd.lock"))
	want(t, f, levelFail, "not a directory")
}

// readOnlyState is the real state probe on a directory doctor may not
// write.
type readOnlyState struct{ realState }

func (readOnlyState) Writable(dir string) error {
	return &os.PathError{Op: "open", Path: dir + "/.anprctl-doctor-1", Err: syscall.EACCES}
}

func TestDoctorStateNotWritable(t *testing.T) {
	d := testDoctor()
	d.state = readOnlyState{}
	d.asRoot = true
	_, f := d.checkState(t.TempDir())
	want(t, f, levelFail, "cannot write", "chown -R anprd:anprd")
	// A technician without root: the directory is anprd's, not theirs.
	d.asRoot = false
	_, f = d.checkState(t.TempDir())
	want(t, f, levelWarn, "doctor may not write", "sudo anprctl doctor")
}

func TestLockHolder(t *testing.T) {
	locks := "1: POSIX  ADVISORY  WRITE 99 00:1a:777 0 EOF\n" +
		"2: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF\n" +
		"2: -> FLOCK  ADVISORY  WRITE 5555 fd:01:1234567 0 EOF\n"
	if pid := lockHolder([]byte(locks), 1234567); pid != 4242 {
		t.Errorf("holder %d, want 4242", pid)
	}
	if pid := lockHolder([]byte(locks), 777); pid != 0 {
		t.Errorf("a POSIX lock is not anprd's flock: %d", pid)
	}
}

func FuzzLockHolder(f *testing.F) {
	f.Add([]byte("1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF\n"), uint64(1234567))
	f.Add([]byte("2: -> FLOCK ADVISORY WRITE x ::"), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, ino uint64) {
		if pid := lockHolder(b, ino); pid < 0 {
			t.Errorf("negative pid %d", pid)
		}
	})
}

func TestParseEnv(t *testing.T) {
	got := parseEnv([]byte("# comment\n; other\nANPRD_LOG_LEVEL=debug\n  ANPRD_STATE_DIR = \"/srv/anprd\"\nBROKEN\n=x\nANPRD_MODELS_DIR='/m'\n"))
	wantEnv := map[string]string{"ANPRD_LOG_LEVEL": "debug", "ANPRD_STATE_DIR": "/srv/anprd", "ANPRD_MODELS_DIR": "/m"}
	if fmt.Sprint(got) != fmt.Sprint(wantEnv) {
		t.Errorf("parseEnv = %v, want %v", got, wantEnv)
	}
}

func FuzzParseEnv(f *testing.F) {
	f.Add([]byte("A=1\n#x\nB='2'\n"))
	f.Add([]byte("=\n\"\n'"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for k := range parseEnv(b) {
			if k == "" || strings.ContainsAny(k, "= \t\n") {
				t.Errorf("bad key %q", k)
			}
		}
	})
}

func TestDoctorAccess(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // the test's own temporary directory is root's alone
	os.Chmod(dir, 0o755)
	cfgPath := filepath.Join(dir, "anprd.yaml")
	key := filepath.Join(dir, "client.key")
	os.WriteFile(cfgPath, nil, 0o644)
	os.WriteFile(key, nil, 0o600) // root's alone, as openssl leaves it
	p := &accessProbe{name: "anprd", uid: 12345, gids: []uint32{12345}, groups: []string{"anprd"}}
	cfg := &config.Config{Path: cfgPath, MQTT: config.MQTT{KeyFile: key}, Reader: config.Reader{ModelsDir: dir}, State: config.State{Dir: dir}}
	fs := p.check(cfg)
	if len(fs) != 2 {
		t.Fatalf("findings %v: want the key and the state directory", fs)
	}
	want(t, fs[0], levelFail, "cannot read mqtt.key_file", "0600", "chgrp anprd "+key)
	want(t, fs[1], levelFail, "cannot write the state directory", "chown -R anprd:anprd")

	os.Chmod(key, 0o640)
	os.Chown(key, 0, 12345)
	os.Chown(dir, 12345, 12345)
	want(t, p.check(cfg)[0], levelOK, "user anprd")
}

// ---- the broker, against a real Mosquitto

func brokerDoctor(t *testing.T, m config.MQTT) finding {
	t.Helper()
	d := testDoctor()
	if m.ClientID == "" {
		m.ClientID = "anprd-test-box"
	}
	f := d.checkBroker(context.Background(), m)
	t.Logf("%s %s -> %s", f.Level, f.Finding, f.Fix)
	return f
}

func TestDoctorBrokerRefused(t *testing.T) {
	f := brokerDoctor(t, config.MQTT{Broker: fmt.Sprintf("tcp://127.0.0.1:%d", closedPort(t))})
	want(t, f, levelFail, "refused the connection", "mqtt.broker")
}

func TestDoctorBrokerDNS(t *testing.T) {
	d := testDoctor()
	d.broker = &fakeResolver{lookup: &net.DNSError{Err: "no such host", Name: "mqtt.example.invalid", IsNotFound: true}}
	want(t, d.checkBroker(context.Background(), config.MQTT{Broker: "ssl://mqtt.example.invalid:8883", ClientID: "x"}),
		levelFail, "DNS: cannot resolve mqtt.example.invalid", "resolv.conf")
}

func TestDoctorBrokerPassword(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Username: "box-1", Password: "right"})
	pw := filepath.Join(t.TempDir(), "mqtt.password")
	os.WriteFile(pw, []byte("wrong\n"), 0o600)
	f := brokerDoctor(t, config.MQTT{Broker: b.URL, Username: "box-1", PasswordFile: pw})
	if f.Level != levelFail || !strings.Contains(f.Finding, "bad user name or password") && !strings.Contains(f.Finding, "not authorised") {
		t.Errorf("wrong password: %+v", f)
	}
	os.WriteFile(pw, []byte("right\n"), 0o600)
	want(t, brokerDoctor(t, config.MQTT{Broker: b.URL, Username: "box-1", PasswordFile: pw}), levelOK, "login as user box-1 accepted", "anprd-test-box-doctor")
}

func TestDoctorBrokerTLS(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{ClientCert: true})
	certs := mqtttest.MakeCerts(t, t.TempDir())
	// A CA that did not sign the broker's certificate.
	want(t, brokerDoctor(t, config.MQTT{Broker: b.URL, CAFile: certs.OtherCA, CertFile: b.CertFile, KeyFile: b.KeyFile}),
		levelFail, "not signed by mqtt.ca_file", "mqtt.ca_file")
	// No client certificate, where the broker requires one.
	want(t, brokerDoctor(t, config.MQTT{Broker: b.URL, CAFile: b.CAFile}), levelFail, "wants a client certificate", "mqtt.cert_file")
	// A client certificate from another CA.
	want(t, brokerDoctor(t, config.MQTT{Broker: b.URL, CAFile: b.CAFile, CertFile: certs.UntrustedCert, KeyFile: certs.UntrKey}),
		levelFail, "refused this box's client certificate")
	// A name the broker's certificate is not for.
	want(t, brokerDoctor(t, config.MQTT{Broker: strings.Replace(b.URL, "127.0.0.1", "localhost", 1), CAFile: b.CAFile, CertFile: b.CertFile, KeyFile: b.KeyFile}),
		levelFail, "localhost", "mqtt.broker")
	want(t, brokerDoctor(t, config.MQTT{Broker: b.URL, CAFile: b.CAFile, CertFile: b.CertFile, KeyFile: b.KeyFile}),
		levelOK, "TLS 1.", "client certificate accepted", "login as the client certificate accepted")
}

// TestDoctorRealRun runs anprctl doctor as a technician would, on a
// config with the real models, a replayed camera, a real Mosquitto with
// mutual TLS and a password, and a barrier lane on this machine's GPIO.
func TestDoctorRealRun(t *testing.T) {
	lib, models := ocrtest.Deps(t)
	b := mqtttest.Start(t, mqtttest.Options{ClientCert: true, Username: "box-1", Password: "s3cret"})
	dir := t.TempDir()
	frames := filepath.Join(dir, "frames")
	os.Mkdir(frames, 0o755)
	img := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC3)
	defer img.Close()
	for i := range 3 {
		if !gocv.IMWrite(filepath.Join(frames, fmt.Sprintf("%03d.png", i)), img) {
			t.Fatal("cannot write a frame")
		}
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	os.WriteFile(filepath.Join(dir, "central.pub"), protocol.MarshalPublicKey(pub), 0o644)
	os.WriteFile(filepath.Join(dir, "mqtt.password"), []byte("s3cret\n"), 0o600)
	cfg := fmt.Sprintf(`version: 1
site: {id: test-garage, device: box-1, timezone: Europe/Oslo}
state: {dir: state}
reader: {onnxruntime_library: %s, models_dir: %s}
mqtt:
  broker: %s
  username: box-1
  password_file: mqtt.password
  ca_file: %s
  cert_file: %s
  key_file: %s
  central_key_file: central.pub
lanes:
  - id: in-1
    direction: entry
    camera: {source: frames}
    gate: {chip: gpiochip0, open: 17, safety_loop: {line: 27, active_low: true}}
`, lib, models, b.URL, b.CAFile, b.CertFile, b.KeyFile)
	path := filepath.Join(dir, "anprd.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	os.Mkdir(filepath.Join(dir, "state"), 0o750)
	os.Mkdir(filepath.Join(dir, "state-from-env"), 0o750)
	// The unit's environment file applies, as it does to anprd (the
	// test's own environment would win over it).
	t.Setenv("ANPRD_STATE_DIR", "")
	envFile := filepath.Join(dir, "anprd.env")
	os.WriteFile(envFile, []byte("# overrides\nANPRD_STATE_DIR=state-from-env\n"), 0o644)

	var out, errb bytes.Buffer
	code := run([]string{"doctor", "-config", path, "-env", envFile, "-json", "-camera-timeout", "20s"}, &out, &errb)
	var rep struct {
		OK     bool      `json:"ok"`
		Checks []finding `json:"checks"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output %q, %s: %v", code, out.String(), errb.String(), err)
	}
	by := map[string]finding{}
	anyFail := false
	for _, f := range rep.Checks {
		by[f.Check] = f
		anyFail = anyFail || f.Level == levelFail
		t.Logf("%-5s %-14s %s", f.Level, f.Check, f.Finding)
	}
	want(t, by["config"], levelOK, "site test-garage")
	want(t, by["state"], levelOK, "state-from-env writable", "not running")
	want(t, by["models"], levelOK, "detector and recogniser sessions open")
	want(t, by["camera in-1"], levelOK, "640x480 frame")
	want(t, by["broker"], levelOK, "client certificate accepted", "user box-1 accepted")
	want(t, by["central-key"], levelOK, protocol.KeyID(pub))
	if len(gpiocdev.Chips()) == 0 {
		want(t, by["gpio in-1"], levelFail, "this machine has no GPIO chip")
	}
	if wantCode := map[bool]int{true: 1, false: 0}[anyFail]; code != wantCode || rep.OK == anyFail {
		t.Errorf("exit %d, ok %v, with a FAIL: %v", code, rep.OK, anyFail)
	}
}

// TestReport: one line per check, levels aligned, the fix after the
// finding, line breaks in an error folded, and a count at the end.
func TestReport(t *testing.T) {
	fs := []finding{
		okf("config", "/etc/anprd/anprd.yaml: site s"),
		bad("clock", levelFail, "not synchronised", "timedatectl set-ntp true"),
		bad("systemd", levelWarn, "systemd does not answer (a\nb)", "boot with systemd"),
		skipf("access", "run as root"),
	}
	var out bytes.Buffer
	if code := report(fs, false, &out); code != 1 {
		t.Errorf("exit %d with a FAIL, want 1", code)
	}
	wantText := "ok    config   /etc/anprd/anprd.yaml: site s\n" +
		"FAIL  clock    not synchronised -> fix: timedatectl set-ntp true\n" +
		"warn  systemd  systemd does not answer (a; b) -> fix: boot with systemd\n" +
		"skip  access   run as root\n" +
		"\n1 ok, 1 warn, 1 FAIL, 1 skipped\n"
	if out.String() != wantText {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), wantText)
	}
	out.Reset()
	if code := report(fs[:1], true, &out); code != 0 || !json.Valid(out.Bytes()) || !strings.Contains(out.String(), `"ok": true`) {
		t.Errorf("-json: exit %d, %s", code, out.String())
	}
}
