package sim

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprd/gate"

	"github.com/rs/zerolog"
)

// TestControl drives a simulated barrier, run by a real gate.Barrier, over
// the control socket: a vehicle on the arming loop is seen, the barrier
// opened by anprd's side rises, the vehicle on the safety loop keeps it up,
// and bad commands get an error and leave the connection usable.
func TestControl(t *testing.T) {
	s := New(Options{OpenTime: 50 * time.Millisecond, CloseTime: 50 * time.Millisecond})
	b, err := gate.New(s, gate.Options{Lane: "in-1", Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	path := filepath.Join(t.TempDir(), "sim.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, map[string]*Barrier{"in-1": s}) }()

	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Do("in-1", "arming", "on")
	if err != nil || !st.Arming || st.Safety || st.Position != 0 {
		t.Fatalf("arming on: %+v %v", st, err)
	}
	if _, err := b.Open("test"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.Position < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if st, err = c.Do("in-1", "state"); err != nil {
			t.Fatal(err)
		}
	}
	if st.Position != 1 {
		t.Fatalf("the arm did not rise: %+v", st)
	}
	if st, err = c.Do("in-1", "safety", "on"); err != nil || !st.Safety {
		t.Fatalf("safety on: %+v %v", st, err)
	}
	for _, bad := range []struct{ args, want string }{
		{"out-9 state", "no simulated barrier"},
		{"in-1 arming maybe", "want on or off"},
		{"in-1 open", "unknown command"},
		{"in-1 state now", "takes no argument"},
	} {
		f := strings.Fields(bad.args)
		if _, err := c.Do(f[0], f[1:]...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.args, err, bad.want)
		}
	}
	c.Do("in-1", "arming", "off")
	if st, err = c.Do("in-1", "safety", "off"); err != nil || st.Safety || st.Arming {
		t.Fatalf("off the loops: %+v %v", st, err)
	}
	// anprd closes the barrier once the vehicle is through; it never came
	// down on it.
	deadline = time.Now().Add(5 * time.Second)
	for st.Position > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		st, _ = c.Do("in-1", "state")
	}
	if st.Position != 0 || st.Hits != 0 {
		t.Errorf("after the vehicle: %+v", st)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"in-1 arming on", "in-1 safety off", "in-1 press", "in-1 state", "x", "", "a fault on extra", "\x00 state"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := parseCommand(line)
		if err != nil {
			return
		}
		if c.lane == "" || !map[string]bool{"arming": true, "safety": true, "fault": true, "press": true, "state": true}[c.verb] {
			t.Fatalf("%q parsed as %+v", line, c)
		}
	})
}

func FuzzParseState(f *testing.F) {
	for _, s := range []string{"position=0.500 arming=on safety=off hits=0", "position=1 arming=off safety=on hits=3 extra=1", "position=NaN arming=on safety=on hits=0", "hits=-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := parseState(text)
		if err != nil {
			return
		}
		back, err := parseState(s.String())
		if err != nil || back.Arming != s.Arming || back.Safety != s.Safety || back.Hits != s.Hits || back.Position < 0 || back.Position > 1 {
			t.Fatalf("%q -> %+v -> %+v %v", text, s, back, err)
		}
	})
}
