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
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/presence"
	"anprd/internal/state"
	"anprd/sync/central"
	"anprd/sync/mqtt"
	"anprd/sync/outbox"
	"anprd/sync/protocol"
	"anprd/sync/uplink"

	"github.com/rs/zerolog"
)

// uplinkResult is what `anprctl bench uplink` prints.
type uplinkResult struct {
	Passages int    `json:"passages"`
	Broker   string `json:"broker"`
	Window   int    `json:"window"`
	// Record: one passage per fsync'd transaction, as a lane hands them
	// over, for the first RecordSingles; the rest in transactions of 100.
	RecordSingles int     `json:"record_singles"`
	RecordP50Ms   float64 `json:"record_p50_ms"`
	RecordP99Ms   float64 `json:"record_p99_ms"`
	RecordSeconds float64 `json:"record_seconds"`
	AckSeconds    float64 `json:"ack_seconds"`    // uplink start to an empty outbox
	AckPerSecond  float64 `json:"ack_per_second"` // passages acknowledged by the broker and removed
	Arrived       int     `json:"arrived"`        // unique ids at the subscriber
	Duplicates    int     `json:"duplicates"`     // copies beyond the first at the subscriber
	Lost          int     `json:"lost"`           // passages that never arrived
	ArriveSeconds float64 `json:"arrive_seconds"` // uplink start to the last unique id at the subscriber
	PayloadBytes  int     `json:"payload_bytes"`  // one passage's JSON
	LoadAvg       string  `json:"loadavg"`
	Mosquitto     string  `json:"mosquitto,omitempty"` // the broker binary started for the run
}

func runBenchUplink(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl bench uplink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("passages", 10000, "passages to upload")
	broker := fs.String("broker", "", "the broker (default: start /usr/sbin/mosquitto on a free port of 127.0.0.1)")
	window := fs.Int("window", 256, "messages in flight")
	singles := fs.Int("singles", 500, "passages recorded one per transaction first, to time Record as a lane sees it")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *n < 1 || *singles < 0 {
		fmt.Fprintln(stderr, "anprctl bench uplink: -passages must be at least 1")
		return 2
	}
	res, err := benchUplink(*n, *broker, *window, min(*singles, *n))
	if err != nil {
		fmt.Fprintf(stderr, "anprctl bench uplink: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		fmt.Fprintf(stdout, "passages   %d (%d bytes each) to %s, window %d\n", res.Passages, res.PayloadBytes, res.Broker, res.Window)
		fmt.Fprintf(stdout, "record     %.2f s; one per transaction: p50 %.2f ms, p99 %.2f ms (%d)\n", res.RecordSeconds, res.RecordP50Ms, res.RecordP99Ms, res.RecordSingles)
		fmt.Fprintf(stdout, "acked      %.2f s: %.0f passages/s acknowledged and removed from the outbox\n", res.AckSeconds, res.AckPerSecond)
		fmt.Fprintf(stdout, "arrived    %d unique, %d duplicates, %d lost (last after %.2f s)\n", res.Arrived, res.Duplicates, res.Lost, res.ArriveSeconds)
		fmt.Fprintf(stdout, "load       %s\n", res.LoadAvg)
	}
	if res.Lost > 0 {
		return 1
	}
	return 0
}

func benchUplink(n int, broker string, window, singles int) (*uplinkResult, error) {
	res := &uplinkResult{Passages: n, Window: window, RecordSingles: singles}
	if broker == "" {
		url, stop, err := startMosquitto()
		if err != nil {
			return nil, err
		}
		defer stop()
		broker = url
		res.Mosquitto = "/usr/sbin/mosquitto"
	}
	res.Broker = broker
	dir, err := os.MkdirTemp("", "anprctl-uplink-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ob, err := outbox.Open(db.DB, outbox.Options{Max: n + 1})
	if err != nil {
		return nil, err
	}

	// Passages as a lane makes them: a decision, a presence change.
	var gen passage.Generator
	now := time.Now()
	mk := func(i int) passage.Passage {
		at := now.Add(time.Duration(i) * time.Millisecond)
		d := decide.Decision{Class: decide.Permit, Reason: decide.PermitValid, Action: decide.Open, Plate: "EL43210", Match: decide.MatchExact,
			Permit: "453847", Tenant: "t-1200", Product: "month-p2", Pool: "acme", Reference: "employee 17",
			Enter: &presence.Vehicle{Facility: "sentrum", Plate: "EL43210", Entered: at, Lane: "in-1", Class: "permit", Permit: "453847", Pool: "acme", Source: presence.FromLane}}
		pd, s := passage.FromDecision(d)
		return passage.Passage{ID: gen.New(at), Site: "bench", Device: "box-1", Lane: "in-1", Direction: "entry", Kind: passage.Vehicle, Time: at,
			Read:     &passage.Read{Plate: "EL43210", Conf: 0.97, Country: "NO", Candidates: []string{"EL43Z10"}, Frames: 6, Direction: 1},
			Decision: pd, Session: s, Gate: passage.Gate{Action: passage.Opened, Passed: true},
			Timings:  passage.Timings{Trigger: at.Add(-800 * time.Millisecond), FirstRead: at.Add(-600 * time.Millisecond), Decided: at.Add(-590 * time.Millisecond), Command: at.Add(-588 * time.Millisecond), Passed: at},
			Evidence: passage.Evidence{Plate: "2026-11-24/080000.000-in-1-1-plate.jpg", Scene: "2026-11-24/080000.000-in-1-1-scene.jpg"},
			Presence: passage.PresenceOf("sentrum", d)}
	}
	if b, err := json.Marshal(mk(0)); err == nil {
		res.PayloadBytes = len(b)
	}
	start := time.Now()
	var lat []time.Duration
	for i := range singles {
		t := time.Now()
		if err := ob.Record(mk(i)); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t))
	}
	for lo := singles; lo < n; lo += 100 {
		ps := make([]passage.Passage, 0, 100)
		for i := lo; i < min(lo+100, n); i++ {
			ps = append(ps, mk(i))
		}
		if err := ob.RecordAll(ps); err != nil {
			return nil, err
		}
	}
	res.RecordSeconds = time.Since(start).Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.RecordP50Ms = float64(rank(lat, 50).Microseconds()) / 1e3
		res.RecordP99Ms = float64(rank(lat, 99).Microseconds()) / 1e3
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	counter := central.NewCounter()
	sub, _ := mqtt.New(mqtt.Options{Broker: broker, ClientID: "anprctl-bench-central", Log: zerolog.Nop()})
	sub.Subscribe("passages", 1, 1<<30, func(r mqtt.Received) { counter.Add(r.Payload) }, "anpr/v1/bench/box-1/passage")
	subDone := make(chan struct{})
	go func() { sub.Run(ctx, nil); close(subDone) }()
	defer func() { cancel(); <-subDone }()
	edge, _ := mqtt.New(mqtt.Options{Broker: broker, ClientID: "anprctl-bench-edge", Log: zerolog.Nop()})
	topics := protocol.Topics{Prefix: "anpr/v1", Site: "bench", Device: "box-1"}
	u := uplink.New(ob, edge, uplink.Options{Topics: topics, Window: window, Log: zerolog.Nop()})
	deadline := time.Now().Add(10 * time.Second)
	for !sub.Connected() {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no connection to %s: %s", broker, sub.LastError())
		}
		time.Sleep(10 * time.Millisecond)
	}
	edge.OnConnect(u.Connected)
	edgeDone := make(chan struct{})
	upDone := make(chan struct{})
	ectx, ecancel := context.WithCancel(ctx)
	defer func() { ecancel(); <-edgeDone; <-upDone }()
	start = time.Now()
	go func() { edge.Run(ectx, nil); close(edgeDone) }()
	go func() { u.Run(ectx); close(upDone) }()
	for {
		st, err := ob.Stats()
		if err != nil {
			return nil, err
		}
		if st.Entries == 0 {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return nil, fmt.Errorf("%d entries still in the outbox after 5 minutes", st.Entries)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.AckSeconds = time.Since(start).Seconds()
	res.AckPerSecond = float64(n) / res.AckSeconds
	counter.WaitUnique(n, 30*time.Second)
	res.ArriveSeconds = time.Since(start).Seconds()
	res.Arrived, res.Duplicates, _ = counter.Counts()
	res.Lost = n - res.Arrived
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAvg = strings.TrimSpace(string(b))
	}
	return res, nil
}

// startMosquitto runs a broker on a free port of 127.0.0.1 with a config
// of its own, for the benchmark only.
func startMosquitto() (url string, stop func(), err error) {
	const bin = "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		return "", nil, fmt.Errorf("mosquitto is not installed (%v); make deps installs it, or give -broker", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "anprctl-mosquitto-")
	if err != nil {
		return "", nil, err
	}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 0\nlog_dest stderr\nlog_type error\n", port)
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	cf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return "", nil, err
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "-c", cf)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop = func() {
		cmd.Process.Kill()
		<-exited
		os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			os.RemoveAll(dir)
			return "", nil, errors.New("mosquitto exited: " + log.String())
		default:
		}
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return fmt.Sprintf("tcp://127.0.0.1:%d", port), stop, nil
		}
	}
	stop()
	return "", nil, errors.New("mosquitto did not start listening: " + log.String())
}
