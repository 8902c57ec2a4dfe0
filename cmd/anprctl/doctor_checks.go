package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"anprd/camera/onnx"
	"anprd/camera/source"
	"anprd/gate"
	"anprd/gate/gpiocdev"
	"anprd/gate/setup"
	"anprd/internal/config"
	"anprd/internal/state"
	"anprd/sync/protocol"
)

// ---- state directory

// stateProbe looks at the state directory without opening the database.
type stateProbe interface {
	// Writable creates and removes a file in dir.
	Writable(dir string) error
	// LockHolder is the pid holding the flock on path, 0 when none.
	LockHolder(path string) (int, error)
	// Command is the name of process pid (/proc/PID/comm), "" if unknown.
	Command(pid int) string
}

// stateInfo is what the other checks need to know of the state check:
// whether anprd is running (it holds the lock), and as which pid.
type stateInfo struct{ pid int }

func (d *doctor) checkState(dir string) (stateInfo, finding) {
	const c = "state"
	fi, err := os.Stat(dir)
	switch {
	case os.IsNotExist(err):
		return stateInfo{}, bad(c, levelWarn, dir+" does not exist yet",
			"systemd makes it when anprd first starts (StateDirectory=anprd); for another state.dir: mkdir -p "+dir+" && chown anprd:anprd "+dir)
	case err != nil:
		return stateInfo{}, bad(c, levelFail, err.Error(), "check the path in state.dir (or ANPRD_STATE_DIR)")
	case !fi.IsDir():
		return stateInfo{}, bad(c, levelFail, dir+" is not a directory", "point state.dir at a directory")
	}
	lock := filepath.Join(dir, state.LockName)
	pid, lerr := d.state.LockHolder(lock)
	var st stateInfo
	running := ""
	if lerr == nil && pid > 0 {
		st.pid = pid
		running = fmt.Sprintf("; anprd is running (pid %d holds %s)", pid, state.LockName)
		if name := d.state.Command(pid); name != "" && !strings.HasPrefix(name, "anprd") {
			return st, bad(c, levelFail, fmt.Sprintf("%s is locked by pid %d (%s), not by anprd", lock, pid, name),
				"stop that process, or give anprd its own state.dir")
		}
	} else if lerr == nil {
		running = "; not locked: anprd is not running"
	}
	if err := d.state.Writable(dir); err != nil {
		if os.IsPermission(err) && !d.asRoot {
			return st, bad(c, levelWarn, fmt.Sprintf("doctor may not write in %s: %v%s", dir, err, running),
				"run doctor as root (sudo anprctl doctor), which also checks what the anprd user may write")
		}
		return st, bad(c, levelFail, fmt.Sprintf("cannot write in %s: %v%s", dir, err, running),
			"chown -R anprd:anprd "+dir+" (the service runs as user anprd)")
	}
	db := "no database yet"
	if fi, err := os.Stat(filepath.Join(dir, state.FileName)); err == nil {
		db = fmt.Sprintf("%s %s", state.FileName, sizeText(uint64(fi.Size())))
	}
	return st, okf(c, "%s writable, %s%s", dir, db, running)
}

type realState struct{}

func (realState) Writable(dir string) error {
	f, err := os.CreateTemp(dir, ".anprctl-doctor-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// LockHolder reads /proc/locks, the kernel's list of file locks, rather
// than trying the lock: taking it, even for a moment, could make an anprd
// starting at that instant refuse to start.
func (realState) LockHolder(path string) (int, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return 0, nil
		}
		return 0, err
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0, err
	}
	return lockHolder(b, st.Ino), nil
}

func (realState) Command(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// lockHolder finds the pid of the FLOCK on inode ino in /proc/locks text:
// "1: FLOCK  ADVISORY  WRITE 4242 00:2e:1234 0 EOF". Waiters ("->") are
// not holders. The device is not compared: overlay filesystems report
// it differently from stat.
func lockHolder(procLocks []byte, ino uint64) int {
	sc := bufio.NewScanner(bytes.NewReader(procLocks))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		parts := strings.Split(f[5], ":")
		if len(parts) != 3 {
			continue
		}
		if n, err := strconv.ParseUint(parts[2], 10, 64); err != nil || n != ino {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// ---- disk

func (d *doctor) checkDisk(dir string) finding {
	const c = "disk"
	// The state directory may not exist yet: its file system is the
	// nearest existing parent's.
	p := dir
	for {
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		p = filepath.Dir(p)
	}
	free, total, err := d.disk(p)
	if err != nil {
		return bad(c, levelWarn, fmt.Sprintf("cannot tell the free space of %s: %v", p, err), "check the file system with df -h "+p)
	}
	what := fmt.Sprintf("%s free of %s on %s", sizeText(free), sizeText(total), p)
	fix := "free space (journalctl --vacuum-size=200M, old files), shorten retention.evidence, or give " + dir + " a larger disk"
	switch {
	case free < d.minFree/10:
		return bad(c, levelFail, what+": passages and evidence images may soon not be written", fix)
	case free < d.minFree:
		return bad(c, levelWarn, fmt.Sprintf("%s, under %s", what, sizeText(d.minFree)), fix)
	}
	return okf(c, "%s", what)
}

func statDisk(dir string) (free, total uint64, err error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return 0, 0, err
	}
	return s.Bavail * uint64(s.Bsize), s.Blocks * uint64(s.Bsize), nil
}

func sizeText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// ---- models

// modelLoader is the plate reader's loading, step by step, so that the
// finding can say which step failed.
type modelLoader interface {
	// Runtime loads the ONNX Runtime library and returns its version.
	Runtime(lib string) (string, error)
	// Check checks the models' tensor shapes and character list.
	Check(dir string) error
	// Sessions opens the detector and recogniser sessions and closes them.
	Sessions(dir string, threads int) error
}

func (d *doctor) checkModels(r config.Reader) finding {
	const c = "models"
	if _, err := os.Stat(r.ONNXRuntimeLibrary); err != nil {
		return bad(c, levelFail, "ONNX Runtime library not found: "+err.Error(),
			"make install puts it in /usr/lib/anprd/; or set reader.onnxruntime_library (or ANPRD_ONNXRUNTIME_LIBRARY) to the libonnxruntime.so.1 that make deps fetched")
	}
	for _, f := range onnx.ModelFiles {
		if _, err := os.Stat(filepath.Join(r.ModelsDir, f)); err != nil {
			return bad(c, levelFail, "model file missing: "+err.Error(),
				"make install puts the models in /usr/share/anprd/models/; or set reader.models_dir (or ANPRD_MODELS_DIR)")
		}
	}
	version, err := d.models.Runtime(r.ONNXRuntimeLibrary)
	if err != nil {
		return bad(c, levelFail, fmt.Sprintf("ONNX Runtime %s does not load: %v", r.ONNXRuntimeLibrary, err),
			"use the library make deps fetched for this CPU (file "+r.ONNXRuntimeLibrary+" says which; ldd shows what it lacks)")
	}
	if err := d.models.Check(r.ModelsDir); err != nil {
		return bad(c, levelFail, fmt.Sprintf("models in %s: %v", r.ModelsDir, err),
			"install the models this anprd was built for (make deps checks them against internal/deps/SHA256SUMS, make install copies them)")
	}
	if err := d.models.Sessions(r.ModelsDir, r.Threads); err != nil {
		return bad(c, levelFail, fmt.Sprintf("the detector and recogniser sessions do not open: %v", err),
			"reinstall the models (make install); a box short of memory needs about 300 MB free for two lanes")
	}
	return okf(c, "ONNX Runtime %s loads from %s; detector and recogniser sessions open from %s", version, r.ONNXRuntimeLibrary, r.ModelsDir)
}

// ---- cameras

// cameraProbe opens a lane's camera.
type cameraProbe interface {
	// Dial connects to a TCP address and closes the connection.
	Dial(ctx context.Context, addr string) error
	// Frame opens source and waits for its first frame, returning its
	// size.
	Frame(ctx context.Context, src, rtspTransport string) (width, height int, err error)
}

func (d *doctor) checkCameras(ctx context.Context, cfg *config.Config, st stateInfo) []finding {
	fns := make([]func() []finding, len(cfg.Lanes))
	for i := range cfg.Lanes {
		l := &cfg.Lanes[i]
		fns[i] = func() []finding { return []finding{d.checkCamera(ctx, l, st)} }
	}
	return runAll(fns)
}

func (d *doctor) checkCamera(ctx context.Context, l *config.Lane, st stateInfo) finding {
	c := "camera " + l.ID
	src := l.Camera.Source
	shown := source.Redact(src)
	ctx, cancel := context.WithTimeout(ctx, d.cameraTimeout)
	defer cancel()
	network := false
	if u, err := url.Parse(src); err == nil && strings.Contains(src, "://") {
		network = true
		port := u.Port()
		if port == "" {
			port = map[string]string{"rtsp": "554", "rtsps": "322", "http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
		}
		addr := net.JoinHostPort(u.Hostname(), port)
		if err := d.camera.Dial(ctx, addr); err != nil {
			what, fix := netTrouble(err, addr)
			return bad(c, levelFail, shown+": "+what, fix+" (the camera's address is camera.source)")
		}
	} else if strings.HasPrefix(src, "/dev/") {
		f, err := os.OpenFile(src, os.O_RDWR, 0)
		switch {
		case os.IsNotExist(err):
			return bad(c, levelFail, src+" does not exist", "plug the camera in and find its device with v4l2-ctl --list-devices (package v4l-utils)")
		case os.IsPermission(err):
			return bad(c, levelFail, src+": permission denied", "the service user needs the video group (the unit has SupplementaryGroups=video); for doctor itself run it as root or in group video")
		case err != nil:
			return bad(c, levelFail, src+": "+err.Error(), "check the device with v4l2-ctl -d "+src+" --all")
		}
		f.Close()
	} else if _, err := os.Stat(src); err != nil {
		return bad(c, levelFail, err.Error(), "camera.source names a file or folder that is not there")
	}
	w, h, err := d.camera.Frame(ctx, src, l.Camera.RTSPTransport)
	if err == nil {
		return okf(c, "%s gave a %dx%d frame", shown, w, h)
	}
	what := fmt.Sprintf("%s: no frame within %s: %v", shown, d.cameraTimeout, err)
	fix := "check the source in camera.source"
	switch {
	case strings.HasPrefix(src, "/dev/"):
		fix = "check the camera with v4l2-ctl -d " + src + " --list-formats-ext"
		if st.pid > 0 {
			fix = "anprd (pid " + strconv.Itoa(st.pid) + ") has the device open; stop it (systemctl stop anprd) to test the camera alone"
		}
	case network:
		fix = "the camera answers on the network but gave no picture: check the stream path and the user and password in the URL, that the stream is H.264, H.265 or MJPEG, and try rtsp_transport udp; ffprobe (package ffmpeg) on the same URL shows the camera's own error"
	}
	return bad(c, levelFail, what, fix)
}

// netTrouble says what a failed connection to addr means, and what to do.
func netTrouble(err error, addr string) (what, fix string) {
	host, port, _ := net.SplitHostPort(addr)
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return "cannot resolve " + host + ": " + dns.Err,
			"check the host name, /etc/resolv.conf and the DNS server, or use the IP address"
	case errors.Is(err, syscall.ECONNREFUSED):
		return addr + " refused the connection: nothing listens on port " + port,
			"correct the port, or turn on the service that should listen there"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return addr + " is unreachable: " + err.Error(),
			"check the box's network (ip addr, ip route) and that " + host + " is on it"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "no answer from " + addr + " in time",
			"the host is down or a firewall drops port " + port + "; check with nc -vz " + host + " " + port
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer from " + addr + " in time",
			"the host is down or a firewall drops port " + port + "; check with nc -vz " + host + " " + port
	}
	return "cannot connect to " + addr + ": " + err.Error(), "check the address and the network"
}

// ---- central key

func (d *doctor) checkCentralKey(path string) finding {
	const c = "central-key"
	if path == "" {
		return bad(c, levelFail, "mqtt.central_key_file is not set: the box refuses all permit data and commands, so it never learns who may park",
			"copy the central system's public key (central.pub from anprctl keys gen) to /etc/anprd/central.pub and set mqtt.central_key_file to it")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return bad(c, levelFail, err.Error(), "copy central.pub from the central system to "+path)
	}
	if bytes.Contains(b, []byte("PRIVATE KEY")) {
		return bad(c, levelFail, path+" holds a private key",
			"the box must hold only the central system's public key (central.pub): delete this file from the box and have the central system make a new key pair, since its private key has left it")
	}
	pub, err := protocol.ParsePublicKey(b)
	if err != nil {
		return bad(c, levelFail, fmt.Sprintf("%s: %v", path, err), "use the central.pub written by anprctl keys gen (PEM, PUBLIC KEY)")
	}
	return okf(c, "%s: Ed25519 key %s (the id anprctl keys gen printed at the central system)", path, protocol.KeyID(pub))
}

// ---- GPIO

// gpioInspector looks at GPIO lines without requesting them.
type gpioInspector interface {
	Chips() []string
	Inspect(spec gpiocdev.Spec) (gpiocdev.LineState, error)
}

type realGPIO struct{}

func (realGPIO) Chips() []string { return gpiocdev.Chips() }
func (realGPIO) Inspect(s gpiocdev.Spec) (gpiocdev.LineState, error) {
	return gpiocdev.Inspect(s)
}

func (d *doctor) checkGPIO(l *config.Lane, st stateInfo) []finding {
	c := "gpio " + l.ID
	g := l.Gate
	if g == nil {
		return nil
	}
	if g.Simulate {
		return []finding{bad(c, levelWarn, "simulated barrier (gate.simulate: true): no GPIO line is driven",
			"set gate.simulate: false on a real lane")}
	}
	specs := setup.Specs(g)
	chips := d.gpio.Chips()
	if len(chips) == 0 {
		return []finding{bad(c, levelFail, "this machine has no GPIO chip (no /dev/gpiochip*): the barrier's lines cannot be driven here",
			"run doctor on the gate box itself; there, load the GPIO driver (gpiodetect lists the chips); for a bench test without a barrier set gate.simulate: true")}
	}
	var out []finding
	var lines []string
	ours := 0 // held by the running anprd
	for role := range gate.NumLines {
		spec, ok := specs[role]
		if !ok {
			continue
		}
		key := role.String() // the config key: open, safety_loop, ...
		lc := c + " " + key
		ls, err := d.gpio.Inspect(spec)
		switch {
		case errors.Is(err, os.ErrNotExist):
			out = append(out, bad(lc, levelFail, fmt.Sprintf("chip %s not found (present: %s)", spec.Chip, strings.Join(chips, ", ")),
				"set gate.chip (or the line's chip) to one gpiodetect lists"))
			continue
		case errors.Is(err, os.ErrPermission):
			out = append(out, bad(lc, levelFail, fmt.Sprintf("%s: permission denied", spec.Chip),
				"install the udev rule (make install puts it in /etc/udev/rules.d/60-anprd.rules), then udevadm trigger --subsystem-match=gpio; the unit needs DeviceAllow=char-gpiochip rw"))
			continue
		case err != nil:
			out = append(out, bad(lc, levelFail, fmt.Sprintf("%s: %v", spec, err),
				"gpioinfo "+strings.TrimPrefix(spec.Chip, "/dev/")+" lists the chip's lines by offset and name"))
			continue
		}
		where := fmt.Sprintf("%s:%d", strings.TrimPrefix(spec.Chip, "/dev/"), ls.Offset)
		if ls.Name != "" {
			where += " (" + ls.Name + ")"
		}
		if ls.Used {
			switch {
			case ls.Consumer == "anprd" && st.pid > 0:
				lines = append(lines, key+" "+where)
				ours++
				continue
			case ls.Consumer == "":
				out = append(out, bad(lc, levelFail, where+" is reserved by the kernel (a driver or device-tree overlay uses it)",
					"remove the overlay that claims it (on a Raspberry Pi, /boot/firmware/config.txt) or wire the signal to another line"))
			default:
				out = append(out, bad(lc, levelFail, fmt.Sprintf("%s is held by %q", where, ls.Consumer),
					"stop the program holding it (gpioinfo shows the consumer), or wire the signal to another line"))
			}
			continue
		}
		lines = append(lines, key+" "+where)
	}
	if len(out) > 0 {
		return out
	}
	what := "lines present and free: " + strings.Join(lines, ", ")
	if ours > 0 {
		what = fmt.Sprintf("lines present, %d of %d held by the running anprd (pid %d): %s", ours, len(lines), st.pid, strings.Join(lines, ", "))
	}
	return []finding{okf(c, "%s", what)}
}

// ---- clock

// clockProbe reads the clock's synchronisation and the system time zone.
type clockProbe interface {
	// Kernel is the kernel's view (adjtimex): synchronised, and its
	// estimated error.
	Kernel() (synced bool, esterror time.Duration, err error)
	// Timedated is timedatectl show's properties; an error when there is
	// no timedatectl or no systemd.
	Timedated(ctx context.Context) (map[string]string, error)
	// Zone is the system's time zone from /etc/timezone or /etc/localtime.
	Zone() string
}

func (d *doctor) checkClock(ctx context.Context, siteZone string) []finding {
	var out []finding
	synced, esterr, err := d.clock.Kernel()
	td, tderr := d.clock.Timedated(ctx)
	service := ""
	if tderr == nil {
		if td["NTP"] == "no" {
			service = "; NTP is off in timedatectl"
		}
	}
	fix := "turn time synchronisation on (timedatectl set-ntp true for systemd-timesyncd, or install chrony) and let the box reach an NTP server (UDP 123)"
	switch {
	case err != nil:
		out = append(out, bad("clock", levelWarn, "cannot read the kernel's clock state: "+err.Error(), fix))
	case !synced:
		out = append(out, bad("clock", levelFail, "the clock is not synchronised"+service+": passages' times, permit validity and command_max_age depend on it, and TLS refuses certificates when it is far off", fix))
	default:
		out = append(out, okf("clock", "synchronised, estimated error %s", esterr))
	}
	zone := ""
	if tderr == nil {
		zone = td["Timezone"]
	}
	if zone == "" {
		zone = d.clock.Zone()
	}
	switch {
	case siteZone == "":
	case zone == "":
		out = append(out, bad("timezone", levelWarn, "cannot tell the system's time zone", "timedatectl set-timezone "+siteZone))
	case zone != siteZone:
		out = append(out, bad("timezone", levelWarn, fmt.Sprintf("the system's time zone is %s, the site's (site.timezone) %s: anprd applies the site's to permits, but the journal shows the system's", zone, siteZone),
			"timedatectl set-timezone "+siteZone))
	default:
		out = append(out, okf("timezone", "%s, the site's", zone))
	}
	return out
}

type sysClock struct{}

func realClock() clockProbe { return sysClock{} }

// staUnsync is the kernel's "clock not synchronised" status bit
// (STA_UNSYNC in <linux/timex.h>).
const staUnsync = 0x0040

func (sysClock) Kernel() (bool, time.Duration, error) {
	var t syscall.Timex
	if _, err := syscall.Adjtimex(&t); err != nil {
		return false, 0, err
	}
	return t.Status&staUnsync == 0, time.Duration(t.Esterror) * time.Microsecond, nil
}

func (sysClock) Timedated(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "timedatectl", "show").Output()
	if err != nil {
		return nil, err
	}
	return parseEnv(out), nil
}

func (sysClock) Zone() string {
	if b, err := os.ReadFile("/etc/timezone"); err == nil {
		return strings.TrimSpace(string(b))
	}
	if p, err := os.Readlink("/etc/localtime"); err == nil {
		if _, z, ok := strings.Cut(p, "zoneinfo/"); ok {
			return z
		}
	}
	return ""
}

// ---- systemd

func (d *doctor) checkSystemd(ctx context.Context) finding {
	const c = "systemd"
	_, ferr := os.Stat(d.unitFile)
	if d.systemd == nil {
		if ferr == nil {
			return skipf(c, "no systemctl on this machine; the unit is installed at %s", d.unitFile)
		}
		return skipf(c, "no systemctl on this machine")
	}
	p, err := d.systemd(ctx)
	if err != nil {
		if ferr == nil {
			return bad(c, levelWarn, fmt.Sprintf("systemd does not answer (%v); the unit is installed at %s", err, d.unitFile),
				"on the garage box anprd runs under systemd: boot it with systemd as init")
		}
		return bad(c, levelWarn, fmt.Sprintf("systemd does not answer (%v), and %s is not installed", err, d.unitFile), "make install (as root) installs the unit")
	}
	if p["LoadState"] != "loaded" {
		return bad(c, levelFail, "anprd.service is not installed (LoadState "+p["LoadState"]+")", "make install (as root), then systemctl daemon-reload")
	}
	state := fmt.Sprintf("anprd.service %s, %s (%s)", p["UnitFileState"], p["ActiveState"], p["SubState"])
	if pid := p["MainPID"]; pid != "" && pid != "0" {
		state += ", pid " + pid
	}
	switch {
	case p["UnitFileState"] != "enabled":
		return bad(c, levelFail, state+": it will not start at boot", "systemctl enable --now anprd")
	case p["ActiveState"] == "active":
		return okf(c, "%s", state)
	case p["ActiveState"] == "inactive":
		return bad(c, levelWarn, state, "systemctl start anprd")
	}
	return bad(c, levelFail, state, "journalctl -u anprd -n 50 says why; fix that, then systemctl restart anprd")
}

func systemctlShow(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", "show", "anprd.service",
		"-p", "LoadState", "-p", "UnitFileState", "-p", "ActiveState", "-p", "SubState", "-p", "MainPID").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return nil, errors.New(strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, err
	}
	return parseEnv(out), nil
}
