package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"anprd/gate"
)

// The control protocol lets another process play the world around
// simulated barriers running inside anprd: the demo drives its cars onto
// the loops in step with the video it shows the cameras. One command per
// line, one reply line each ("ok ..." or "error: ..."):
//
//	LANE arming on|off    a vehicle onto or off the arming loop
//	LANE safety on|off    a vehicle onto or off the safety loop
//	LANE fault on|off     the controller's fault output
//	LANE press            the manual button, for 200 ms
//	LANE state            ok position=0.000 arming=off safety=off hits=0
//
// It only moves the simulated world; it cannot open a barrier (that
// stays anprd's decision), and it serves simulated barriers only.

// maxLine bounds a command line; longer ones end the connection.
const maxLine = 256

// command is one parsed control line.
type command struct {
	lane string
	verb string // arming, safety, fault, press, state
	on   bool
}

// parseCommand reads one control line.
func parseCommand(line string) (command, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return command{}, errors.New("want LANE arming|safety|fault on|off, LANE press or LANE state")
	}
	c := command{lane: f[0], verb: f[1]}
	switch c.verb {
	case "arming", "safety", "fault":
		if len(f) != 3 || (f[2] != "on" && f[2] != "off") {
			return command{}, fmt.Errorf("%s: want on or off", c.verb)
		}
		c.on = f[2] == "on"
	case "press", "state":
		if len(f) != 2 {
			return command{}, fmt.Errorf("%s takes no argument", c.verb)
		}
	default:
		return command{}, fmt.Errorf("unknown command %q", c.verb)
	}
	return c, nil
}

// State is a simulated barrier's state as the control protocol reports it.
type State struct {
	Position float64 // 0 down .. 1 up
	Arming   bool
	Safety   bool
	Hits     int // times the arm came down on an occupied safety loop
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (s State) String() string {
	return fmt.Sprintf("position=%.3f arming=%s safety=%s hits=%d", s.Position, onOff(s.Arming), onOff(s.Safety), s.Hits)
}

// parseState reads a state reply (without its "ok ").
func parseState(text string) (State, error) {
	var s State
	seen := 0
	for _, kv := range strings.Fields(text) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return State{}, fmt.Errorf("state: %q is not key=value", kv)
		}
		var err error
		switch k {
		case "position":
			s.Position, err = strconv.ParseFloat(v, 64)
			if err == nil && !(s.Position >= 0 && s.Position <= 1) {
				err = errors.New("out of 0..1")
			}
		case "arming", "safety":
			if v != "on" && v != "off" {
				err = errors.New("want on or off")
			}
			if k == "arming" {
				s.Arming = v == "on"
			} else {
				s.Safety = v == "on"
			}
		case "hits":
			s.Hits, err = strconv.Atoi(v)
			if err == nil && s.Hits < 0 {
				err = errors.New("negative")
			}
		default:
			continue // a newer anprd may say more
		}
		if err != nil {
			return State{}, fmt.Errorf("state: %s: %v", k, err)
		}
		seen++
	}
	if seen != 4 {
		return State{}, fmt.Errorf("state: %q lacks position, arming, safety or hits", text)
	}
	return s, nil
}

// state is the barrier's present state for the control protocol.
func (s *Barrier) state() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return State{Position: s.position(s.clk.Now()), Arming: s.val[gate.LineArming], Safety: s.val[gate.LineSafety], Hits: s.hits}
}

// Serve answers control connections on ln for the barriers by lane id
// until ctx ends; it closes ln.
func Serve(ctx context.Context, ln net.Listener, barriers map[string]*Barrier) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("sim control: %w", err)
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(c, barriers)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	}
}

func serveConn(c net.Conn, barriers map[string]*Barrier) {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, maxLine), maxLine)
	w := bufio.NewWriter(c)
	for sc.Scan() {
		w.WriteString(handle(sc.Text(), barriers) + "\n")
		if w.Flush() != nil {
			return
		}
	}
}

// handle runs one command line and returns its reply.
func handle(line string, barriers map[string]*Barrier) string {
	cmd, err := parseCommand(line)
	if err != nil {
		return "error: " + err.Error()
	}
	b := barriers[cmd.lane]
	if b == nil {
		return fmt.Sprintf("error: no simulated barrier at lane %q", cmd.lane)
	}
	switch cmd.verb {
	case "arming":
		b.SetArming(cmd.on)
	case "safety":
		b.SetSafety(cmd.on)
	case "fault":
		b.SetFault(cmd.on)
	case "press":
		b.Press()
	}
	return "ok " + b.state().String()
}

// Client drives simulated barriers over the control protocol.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to anprd's control socket (a unix socket path).
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return &Client{conn: c, r: bufio.NewReaderSize(c, maxLine)}, nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends one command for lane and returns the barrier's state after it.
func (c *Client) Do(lane string, args ...string) (State, error) {
	line := strings.Join(append([]string{lane}, args...), " ")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		return State{}, err
	}
	reply, err := c.r.ReadString('\n')
	if err != nil {
		return State{}, err
	}
	reply = strings.TrimSpace(reply)
	if rest, ok := strings.CutPrefix(reply, "ok "); ok {
		return parseState(rest)
	}
	return State{}, fmt.Errorf("%s: %s", line, strings.TrimPrefix(reply, "error: "))
}
