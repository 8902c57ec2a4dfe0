package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"anprd/gate/setup"
	"anprd/gate/sim"
	"anprd/internal/passage"
	"anprd/sync/central"
	"anprd/sync/mqtt"

	"gopkg.in/yaml.v3"
)

const demoUsage = `Usage: anprctl demo [flags]

Runs the whole product on this machine, on 127.0.0.1 only: a Mosquitto
broker on a free port with a config of its own, a central key (keys gen),
the demo permits pushed as a signed snapshot (permits push), and anprd on
configs/demo.yaml with simulated barriers at an entrance and an exit whose
cameras are this command's MJPEG streams of rendered cars. It drives each
car onto the barrier's loops in step with the video, and prints every
passage as the central system receives it, checked against what the
scenario expects. Ctrl-C stops anprd and the broker. With -once it plays
the scenario once, prints a summary and exits 0 only if every expected
passage arrived with its classification.
`

type demoOptions struct {
	dir, config, anprd, mosquitto string
	once, verbose                 bool
	timeout                       time.Duration
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o demoOptions
	fs.StringVar(&o.dir, "dir", ".demo", "working folder: the broker's and anprd's configs, logs, state, key and permits")
	fs.StringVar(&o.config, "config", "configs/demo.yaml", "the anprd config the demo's is made from")
	fs.StringVar(&o.anprd, "anprd", "bin/anprd", "the anprd binary")
	fs.StringVar(&o.mosquitto, "mosquitto", "/usr/sbin/mosquitto", "the Mosquitto binary (make deps installs it)")
	fs.BoolVar(&o.once, "once", false, "play the scenario once, print a summary and exit (0: every passage as expected)")
	fs.BoolVar(&o.verbose, "v", false, "say what the demo does at each step")
	fs.DurationVar(&o.timeout, "timeout", 4*time.Minute, "with -once: give up after this long")
	fs.Usage = func() {
		fmt.Fprint(stderr, demoUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ok, err := demo(ctx, o, stdout)
	if err != nil && ctx.Err() != nil && !o.once {
		return 0 // Ctrl-C before the scenario began
	}
	if err != nil {
		fmt.Fprintf(stderr, "anprctl demo: %v\n", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

// demo runs the demo until ctx ends (or, once, the scenario has been
// played); ok says every round so far went as expected. Whatever
// happens, anprd and the broker are stopped before it returns.
func demo(ctx context.Context, o demoOptions, out io.Writer) (ok bool, err error) {
	start := time.Now()
	say := func(format string, a ...any) { fmt.Fprintf(out, "demo: "+format+"\n", a...) }
	step := func(format string, a ...any) {
		if o.verbose {
			say(format, a...)
		}
	}
	for _, bin := range []string{o.anprd, o.mosquitto} {
		if _, err := os.Stat(bin); err != nil {
			return false, fmt.Errorf("%w (make build builds anprd; make deps installs mosquitto)", err)
		}
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	// One demo per folder: a second would pull the state from under the
	// first's anprd. The kernel drops the lock when the demo dies.
	lock, err := os.OpenFile(filepath.Join(dir, "demo.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return false, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false, fmt.Errorf("another demo is running in %s (%v)", dir, err)
	}
	// A fresh state each run: a car left inside by an interrupted run
	// would change the decisions.
	for _, f := range []string{"state", "central.key", "central.pub", "mosquitto.conf", "anprd.yaml"} {
		if err := os.RemoveAll(filepath.Join(dir, f)); err != nil {
			return false, err
		}
	}
	// The cars, rendered before anything starts.
	clips, err := renderCast(demoCars)
	if err != nil {
		return false, err
	}
	empty, err := emptyRoad()
	if err != nil {
		return false, err
	}
	step("rendered %d cars in %v", len(clips), time.Since(start).Round(time.Millisecond))

	// The cameras: they stream until anprd has stopped.
	cams := newMJPEG(empty, "in-1", "out-1")
	camLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return false, err
	}
	camSrv := &http.Server{Handler: cams, ReadHeaderTimeout: 5 * time.Second}
	go camSrv.Serve(camLn)
	defer camSrv.Close()
	defer cams.stop()

	var procs []*demoProc
	defer func() {
		// Stop anprd first, then the broker it flushes to.
		for i := len(procs) - 1; i >= 0; i-- {
			if serr := procs[i].stop(); serr != nil {
				say("%v", serr)
				if err == nil && ok {
					ok = false
				}
			} else if o.verbose || !o.once {
				say("%s stopped", procs[i].name)
			}
		}
	}()

	// The broker.
	brokerPort, err := freePort()
	if err != nil {
		return false, err
	}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\n", brokerPort)
	if os.Geteuid() == 0 {
		conf += "user root\n" // else mosquitto switches to a user that cannot read dir
	}
	if err := os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		return false, err
	}
	broker := fmt.Sprintf("tcp://127.0.0.1:%d", brokerPort)
	mq, err := startProc("mosquitto", dir, o.mosquitto, "-c", filepath.Join(dir, "mosquitto.conf"))
	if err != nil {
		return false, err
	}
	procs = append(procs, mq)
	if err := waitTCP(ctx, fmt.Sprintf("127.0.0.1:%d", brokerPort), mq); err != nil {
		return false, err
	}
	say("mosquitto on %s (pid %d)", broker, mq.cmd.Process.Pid)

	// The central key.
	if code := runKeys([]string{"gen", "-out", filepath.Join(dir, "central")}, io.Discard, out); code != 0 {
		return false, errors.New("keys gen failed")
	}

	// anprd.
	statusPort, err := freePort()
	if err != nil {
		return false, err
	}
	status := fmt.Sprintf("127.0.0.1:%d", statusPort)
	cfgPath := filepath.Join(dir, "anprd.yaml")
	site, err := writeDemoConfig(o.config, cfgPath, demoConfig{dir: dir, status: status, broker: broker, cameras: "http://" + camLn.Addr().String()})
	if err != nil {
		return false, err
	}
	ad, err := startProc("anprd", dir, o.anprd, "-config", cfgPath)
	if err != nil {
		return false, err
	}
	procs = append(procs, ad)
	if err := waitAnprd(ctx, status, ad); err != nil {
		return false, err
	}
	say("anprd ready, status on http://%s/ (pid %d), log %s", status, ad.cmd.Process.Pid, ad.logPath)
	if err := cams.waitClients(ctx, 30*time.Second); err != nil {
		return false, err
	}
	step("both cameras streaming")

	// The central system: subscribe to the passages, then push the permits.
	tail := newTail()
	bf := brokerFlags{broker: broker, prefix: "anpr/v1", site: site, clientID: "anprctl-demo-central"}
	_, stopSub, err := bf.connect(ctx, false, func(c *mqtt.Client) {
		c.Subscribe("passages", 1, 256<<20, tail.add, "anpr/v1/"+site+"/+/passage")
	})
	if err != nil {
		return false, err
	}
	defer stopSub()
	data, err := demoPermits(site)
	if err != nil {
		return false, err
	}
	permitsPath := filepath.Join(dir, "permits.json")
	if err := os.WriteFile(permitsPath, data, 0o644); err != nil {
		return false, err
	}
	var pushOut bytes.Buffer
	pushArgs := []string{"push", "-broker", broker, "-site", site, "-device", "box-1", "-key", filepath.Join(dir, "central.key"),
		"-seq", "1", "-id", "demo-1", "-timeout", "60s", permitsPath}
	if code := runPermits(pushArgs, &pushOut, out); code != 0 {
		return false, errors.New("permits push failed")
	}
	say("%s", strings.TrimSpace(pushOut.String()))

	sc, err := sim.Dial(ctx, setup.SimSocket(filepath.Join(dir, "state")))
	if err != nil {
		return false, fmt.Errorf("anprd's simulated barriers: %w", err)
	}
	defer sc.Close()

	ok = true
	for round := 1; ; round++ {
		var rctx context.Context
		var cancel context.CancelFunc
		if o.once {
			rctx, cancel = context.WithTimeout(ctx, o.timeout)
		} else {
			rctx, cancel = context.WithCancel(ctx)
			say("round %d", round)
		}
		go func() {
			select {
			case <-ad.done: // the round cannot go on
				cancel()
			case <-rctx.Done():
			}
		}()
		fmt.Fprintln(out, demoHeader)
		res := playScenario(rctx, demoWorld{cams: cams, sim: sc, clips: clips, tail: tail}, out)
		cancel()
		if ad.exited() {
			res.problem("anprd exited during the scenario (%v):\n%s", ad.err, ad.logTail())
		}
		if ctx.Err() != nil && !o.once {
			return ok, nil // Ctrl-C
		}
		fmt.Fprintln(out, res.summary(time.Since(start)))
		ok = ok && res.ok()
		if o.once || ad.exited() {
			return ok, nil
		}
	}
}

// demoProc is a child process: anprd or the broker. Its own process
// group keeps a terminal's Ctrl-C to the demo, which stops the children
// in order; the kernel ends them if the demo dies.
type demoProc struct {
	name, logPath string
	cmd           *exec.Cmd
	done          chan struct{}
	err           error
}

func startProc(name, dir, bin string, args ...string) (*demoProc, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &demoProc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	os.WriteFile(filepath.Join(dir, name+".pid"), fmt.Appendf(nil, "%d\n", cmd.Process.Pid), 0o644)
	go func() { p.err = cmd.Wait(); lf.Close(); close(p.done) }()
	return p, nil
}

func (p *demoProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process with SIGTERM (anprd's ordered shutdown), and
// SIGKILL after 15 s; an exit other than 0 is an error.
func (p *demoProc) stop() error {
	defer os.Remove(strings.TrimSuffix(p.logPath, ".log") + ".pid")
	if !p.exited() {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop in 15 s; killed", p.name)
	}
	if p.err != nil {
		return fmt.Errorf("%s exited: %v (log %s)", p.name, p.err, p.logPath)
	}
	return nil
}

// logTail is the end of the process's log, for an error message.
func (p *demoProc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-8):], "\n")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitTCP(ctx context.Context, addr string, p *demoProc) error {
	for range 100 {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited at start:\n%s", p.name, p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s does not listen on %s:\n%s", p.name, addr, p.logTail())
}

// waitAnprd waits until anprd is ready and its uplink connected.
func waitAnprd(ctx context.Context, status string, p *demoProc) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		var st struct {
			Ready      bool `json:"ready"`
			Components []struct {
				Name, State string
			} `json:"components"`
		}
		if r, err := hc.Get("http://" + status + "/api/v1/status"); err == nil {
			json.NewDecoder(r.Body).Decode(&st)
			r.Body.Close()
		}
		up := slices.ContainsFunc(st.Components, func(c struct{ Name, State string }) bool { return c.Name == "uplink" && c.State == "ok" })
		if st.Ready && up {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("anprd exited at start:\n%s", p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("anprd not ready with its uplink connected after 90 s:\n%s", p.logTail())
}

// demoConfig is what the demo fills into its copy of the config.
type demoConfig struct {
	dir, status, broker, cameras string
}

// writeDemoConfig copies the config at from to to with the demo's ports,
// state directory, central key and camera streams, and paths made
// absolute; it returns the site id.
func writeDemoConfig(from, to string, d demoConfig) (string, error) {
	b, err := os.ReadFile(from)
	if err != nil {
		return "", err
	}
	base, err := filepath.Abs(filepath.Dir(from))
	if err != nil {
		return "", err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) != 1 {
		return "", fmt.Errorf("%s: not a YAML document: %v", from, err)
	}
	root := doc.Content[0]
	set := func(path, value string) error {
		n, err := yamlAt(root, strings.Split(path, "."), true)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", from, path, err)
		}
		n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", value, 0
		return nil
	}
	for _, kv := range [][2]string{{"status.listen", d.status}, {"mqtt.broker", d.broker},
		{"state.dir", filepath.Join(d.dir, "state")}, {"mqtt.central_key_file", filepath.Join(d.dir, "central.pub")}} {
		if err := set(kv[0], kv[1]); err != nil {
			return "", err
		}
	}
	for _, key := range []string{"reader.onnxruntime_library", "reader.models_dir"} {
		if n, err := yamlAt(root, strings.Split(key, "."), false); err == nil && n.Value != "" && !filepath.IsAbs(n.Value) {
			n.Value = filepath.Join(base, n.Value)
		}
	}
	lanes, err := yamlAt(root, []string{"lanes"}, false)
	if err != nil || lanes.Kind != yaml.SequenceNode {
		return "", fmt.Errorf("%s: no lanes", from)
	}
	for _, l := range lanes.Content {
		id, err := yamlAt(l, []string{"id"}, false)
		if err != nil {
			return "", fmt.Errorf("%s: a lane without an id", from)
		}
		src, err := yamlAt(l, []string{"camera", "source"}, true)
		if err != nil {
			return "", err
		}
		src.Value = d.cameras + "/" + id.Value + ".mjpg"
	}
	site, err := yamlAt(root, []string{"site", "id"}, false)
	if err != nil {
		return "", fmt.Errorf("%s: no site.id", from)
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return "", err
	}
	head := fmt.Sprintf("# Written by anprctl demo from %s; made again at every run.\n", from)
	return site.Value, os.WriteFile(to, append([]byte(head), out...), 0o644)
}

// yamlAt finds the node at path in mapping n, making missing mappings
// and keys when create is set.
func yamlAt(n *yaml.Node, path []string, create bool) (*yaml.Node, error) {
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: not a mapping", key)
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			if !create {
				return nil, fmt.Errorf("no %s", key)
			}
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, next)
		}
		n = next
	}
	return n, nil
}

// mjpeg serves each lane's camera: the frame the demo shows now, ten
// times a second, as an MJPEG stream (multipart/x-mixed-replace) at
// /LANE.mjpg, as an IP camera would.
type mjpeg struct {
	mu      sync.Mutex
	empty   []byte
	frames  map[string][]byte
	clients map[string]int
	done    chan struct{}
	once    sync.Once
}

func newMJPEG(empty []byte, lanes ...string) *mjpeg {
	m := &mjpeg{empty: empty, frames: map[string][]byte{}, clients: map[string]int{}, done: make(chan struct{})}
	for _, l := range lanes {
		m.frames[l] = empty
	}
	return m
}

func (m *mjpeg) show(lane string, frame []byte) {
	m.mu.Lock()
	m.frames[lane] = frame
	m.mu.Unlock()
}

func (m *mjpeg) emptyFrame() []byte { return m.empty }

func (m *mjpeg) stop() { m.once.Do(func() { close(m.done) }) }

func (m *mjpeg) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lane := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".mjpg")
	m.mu.Lock()
	_, ok := m.frames[lane]
	if ok {
		m.clients[lane]++
	}
	m.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	defer func() { m.mu.Lock(); m.clients[lane]--; m.mu.Unlock() }()
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
	tick := time.NewTicker(time.Second / demoFPS)
	defer tick.Stop()
	rc := http.NewResponseController(w)
	for {
		m.mu.Lock()
		f := m.frames[lane]
		m.mu.Unlock()
		fmt.Fprintf(w, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(f))
		w.Write(f)
		if _, err := io.WriteString(w, "\r\n"); err != nil || rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-m.done:
			return
		case <-tick.C:
		}
	}
}

// waitClients waits until every lane's stream has a client (anprd's
// camera).
func (m *mjpeg) waitClients(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		m.mu.Lock()
		var missing []string
		for l := range m.frames {
			if m.clients[l] == 0 {
				missing = append(missing, l)
			}
		}
		m.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			slices.Sort(missing)
			return fmt.Errorf("anprd's cameras did not open the demo's streams of %s", strings.Join(missing, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail is the central system's side: the passages received, by lane in
// order of arrival, deduplicated by id.
type tail struct {
	counter *central.Counter
	mu      sync.Mutex
	byLane  map[string][]*passage.Passage
	bad     []string
	wake    chan struct{}
}

func newTail() *tail {
	return &tail{counter: central.NewCounter(), byLane: map[string][]*passage.Passage{}, wake: make(chan struct{})}
}

func (t *tail) add(r mqtt.Received) {
	p, dup, err := t.counter.Add(r.Payload)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err != nil:
		t.bad = append(t.bad, fmt.Sprintf("%s: %v", r.Topic, err))
	case dup:
		return
	default:
		t.byLane[p.Lane] = append(t.byLane[p.Lane], p)
	}
	close(t.wake)
	t.wake = make(chan struct{})
}

// next waits for the i-th passage (0-based) of lane.
func (t *tail) next(ctx context.Context, lane string, i int, within time.Duration) (*passage.Passage, error) {
	tm := time.NewTimer(within)
	defer tm.Stop()
	for {
		t.mu.Lock()
		ps, wake := t.byLane[lane], t.wake
		t.mu.Unlock()
		if i < len(ps) {
			return ps[i], nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tm.C:
			return nil, fmt.Errorf("no passage from %s within %v", lane, within)
		case <-wake:
		}
	}
}

func (t *tail) count(lane string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byLane[lane])
}
