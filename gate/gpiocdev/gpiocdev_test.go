package gpiocdev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprd/gate"

	"github.com/warthog618/go-gpiocdev"
)

// TestOpenMissingChip runs everywhere: a wrong chip fails Open, naming the
// line and the chip, and leaves nothing requested.
func TestOpenMissingChip(t *testing.T) {
	_, err := Open(map[gate.Line]Spec{gate.LineOpen: {Chip: "/dev/anprd-no-such-chip", Offset: 17}}, "anprd-test")
	if err == nil || !strings.Contains(err.Error(), "open (/dev/anprd-no-such-chip:17)") {
		t.Errorf("Open on a missing chip = %v", err)
	}
}

// TestEdgesOf runs everywhere: kernel events become edges, and a gap in
// a line's event numbers (events the kernel dropped, or go-gpiocdev could
// not read) adds an edge with ErrEventsLost so the barrier reads the line.
func TestEdgesOf(t *testing.T) {
	rise, fall := gpiocdev.LineEventRisingEdge, gpiocdev.LineEventFallingEdge
	var last uint32
	for i, c := range []struct {
		typ   gpiocdev.LineEventType
		seq   uint32
		edges string
	}{
		{rise, 1, "safety_loop=true"},
		{fall, 2, "safety_loop=false"},
		{rise, 5, "safety_loop=true lost"}, // 3 and 4 lost
		{fall, 6, "safety_loop=false"},
		{gpiocdev.LineEventType(9), 7, "error"},
	} {
		var got []string
		for _, e := range edgesOf(gate.LineSafety, gpiocdev.LineEvent{Type: c.typ, LineSeqno: c.seq}, &last) {
			switch {
			case errors.Is(e.Err, ErrEventsLost):
				got = append(got, "lost")
			case e.Err != nil:
				got = append(got, "error")
			default:
				got = append(got, fmt.Sprintf("%s=%v", e.Line, e.Active))
			}
		}
		if g := strings.Join(got, " "); g != c.edges {
			t.Errorf("event %d: edges %q, want %q", i, g, c.edges)
		}
	}
	// uAPI v1 numbers no events: nothing is taken for lost.
	last = 0
	for range 3 {
		if es := edgesOf(gate.LineArming, gpiocdev.LineEvent{Type: rise}, &last); len(es) != 1 || es[0].Err != nil {
			t.Errorf("v1 event: %+v", es)
		}
	}
}

// simRoot is where the kernel's gpio-sim module is configured (configfs).
const simRoot = "/sys/kernel/config/gpio-sim"

// simChip is one simulated GPIO chip, made through configfs, removed at
// the end of the test.
type simChip struct {
	t    *testing.T
	dir  string // its configfs directory
	chip string // gpiochipN
	dev  string // the platform device, gpio-sim.N
}

// newSimChip makes a chip of n lines, some named. The test is skipped,
// saying why, where the kernel has no gpio-sim or we may not configure it.
func newSimChip(t *testing.T, n int, names map[int]string) *simChip {
	t.Helper()
	if _, err := os.Stat("/dev/gpiochip0"); err != nil {
		if _, err := os.Stat(simRoot); err != nil {
			t.Skipf("no GPIO chip and no gpio-sim here (%v): the driver is tested on a kernel with CONFIG_GPIO_SIM, configfs mounted at /sys/kernel/config, as root", err)
		}
	}
	if _, err := os.Stat(simRoot); err != nil {
		t.Skipf("gpio-sim not available (%v): load the gpio-sim module and mount configfs to run the driver tests", err)
	}
	c := &simChip{t: t, dir: filepath.Join(simRoot, fmt.Sprintf("anprd-test-%d-%d", os.Getpid(), time.Now().UnixNano()))}
	bank := filepath.Join(c.dir, "gpio-bank0")
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		t.Skipf("cannot configure gpio-sim (%v): run the driver tests as root", err)
	}
	t.Cleanup(c.remove)
	c.must(os.Mkdir(bank, 0o755))
	c.write(filepath.Join(bank, "num_lines"), fmt.Sprint(n))
	for off, name := range names {
		d := filepath.Join(bank, fmt.Sprintf("line%d", off))
		c.must(os.Mkdir(d, 0o755))
		c.write(filepath.Join(d, "name"), name)
	}
	c.write(filepath.Join(c.dir, "live"), "1")
	c.chip = c.read(filepath.Join(bank, "chip_name"))
	c.dev = c.read(filepath.Join(c.dir, "dev_name"))
	return c
}

func (c *simChip) must(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *simChip) write(path, v string) {
	c.t.Helper()
	c.must(os.WriteFile(path, []byte(v), 0o644))
}

func (c *simChip) read(path string) string {
	c.t.Helper()
	b, err := os.ReadFile(path)
	c.must(err)
	return strings.TrimSpace(string(b))
}

func (c *simChip) remove() {
	os.WriteFile(filepath.Join(c.dir, "live"), []byte("0"), 0o644)
	bank := filepath.Join(c.dir, "gpio-bank0")
	lines, _ := filepath.Glob(filepath.Join(bank, "line*"))
	for _, l := range lines {
		os.Remove(l)
	}
	os.Remove(bank)
	os.Remove(c.dir)
}

// sysfs is a simulated line's attribute directory.
func (c *simChip) sysfs(off int) string {
	return filepath.Join("/sys/devices/platform", c.dev, c.chip, fmt.Sprintf("sim_gpio%d", off))
}

// pull drives a simulated input from outside, as a loop detector would.
func (c *simChip) pull(off int, up bool) {
	v := "pull-down"
	if up {
		v = "pull-up"
	}
	c.write(filepath.Join(c.sysfs(off), "pull"), v)
}

// level is the electrical level of a line as the simulated world sees it.
func (c *simChip) level(off int) string { return c.read(filepath.Join(c.sysfs(off), "value")) }

func nextEdge(t *testing.T, l *Lines) gate.Edge {
	t.Helper()
	select {
	case e := <-l.Edges():
		return e
	case <-time.After(2 * time.Second):
		t.Fatal("no edge")
		return gate.Edge{}
	}
}

// TestSimulatedChip drives lines of a gpio-sim chip: outputs by offset
// and by name, an active-low debounced input, an input's edges.
func TestSimulatedChip(t *testing.T) {
	c := newSimChip(t, 8, map[int]string{1: "GATE_CLOSE", 2: "SAFETY_LOOP"})
	c.pull(4, true) // a relay line left pulled up: not yet an output
	lines, err := Open(map[gate.Line]Spec{
		gate.LineOpen:   {Chip: c.chip, Offset: 0},
		gate.LineClose:  {Chip: c.chip, Offset: -1, Name: "GATE_CLOSE"},
		gate.LineSafety: {Chip: c.chip, Offset: -1, Name: "SAFETY_LOOP", ActiveLow: true, Debounce: 5 * time.Millisecond},
		gate.LineArming: {Chip: c.chip, Offset: 3},
		gate.LineButton: {Chip: "/dev/" + c.chip, Offset: 5},
	}, "anprd-test")
	if err != nil {
		t.Fatal(err)
	}
	defer lines.Close()
	if lines.Has(gate.LineFault) || !lines.Has(gate.LineClose) {
		t.Error("Has does not match the specs")
	}
	for _, tt := range []struct {
		line  gate.Line
		off   int
		on    bool
		level string
	}{{gate.LineOpen, 0, true, "1"}, {gate.LineOpen, 0, false, "0"}, {gate.LineClose, 1, true, "1"}, {gate.LineClose, 1, false, "0"}} {
		if err := lines.Set(tt.line, tt.on); err != nil {
			t.Fatal(err)
		}
		if got := c.level(tt.off); got != tt.level {
			t.Errorf("%s=%v: level %s, want %s", tt.line, tt.on, got, tt.level)
		}
	}
	// The safety loop is active low: pulled down is a vehicle.
	c.pull(2, true)
	c.pull(2, false)
	if e := nextEdge(t, lines); e != (gate.Edge{Line: gate.LineSafety, Active: true}) {
		t.Errorf("edge %+v", e)
	}
	if v, err := lines.Value(gate.LineSafety); err != nil || !v {
		t.Errorf("safety loop value %v, %v", v, err)
	}
	c.pull(3, true)
	if e := nextEdge(t, lines); e != (gate.Edge{Line: gate.LineArming, Active: true}) {
		t.Errorf("edge %+v", e)
	}
	if err := lines.Set(gate.LineArming, true); err == nil {
		t.Error("Set on an input accepted")
	}
	if err := lines.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-lines.Edges(); ok {
		t.Error("Edges not closed by Close")
	}

	// A line that was not an output starts inactive, however it was pulled.
	again, err := Open(map[gate.Line]Spec{gate.LineOpen: {Chip: c.chip, Offset: 4}}, "anprd-test")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if v, _ := again.Value(gate.LineOpen); v || c.level(4) != "0" {
		t.Errorf("a new output started active (level %s)", c.level(4))
	}
}

// TestBarrierOnSimulatedChip runs the barrier on gpio-sim lines: the
// open pulse reaches the line, a vehicle over the safety loop is seen.
func TestBarrierOnSimulatedChip(t *testing.T) {
	c := newSimChip(t, 4, nil)
	lines, err := Open(map[gate.Line]Spec{
		gate.LineOpen:   {Chip: c.chip, Offset: 0},
		gate.LineSafety: {Chip: c.chip, Offset: 1},
	}, "anprd-test")
	if err != nil {
		t.Fatal(err)
	}
	defer lines.Close()
	b, err := gate.New(lines, gate.Options{Lane: "in-1", Pulse: 50 * time.Millisecond, Travel: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if _, err := b.Open("test"); err != nil {
		t.Fatal(err)
	}
	if c.level(0) != "1" {
		t.Error("open pulse not on the line")
	}
	time.Sleep(100 * time.Millisecond)
	if c.level(0) != "0" {
		t.Error("open pulse not ended")
	}
	c.pull(1, true)
	time.Sleep(50 * time.Millisecond)
	c.pull(1, false)
	deadline := time.After(3 * time.Second)
	for {
		select {
		case e := <-b.Events():
			if e.Kind == gate.EventPassed {
				return
			}
		case <-deadline:
			t.Fatal("no vehicle through")
		}
	}
}

// TestInspectMissingChip runs everywhere: a chip that is not there is
// os.ErrNotExist, which anprctl doctor reports as a missing chip.
func TestInspectMissingChip(t *testing.T) {
	_, err := Inspect(Spec{Chip: "/dev/anprd-no-such-chip", Offset: 3})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Inspect on a missing chip = %v, want os.ErrNotExist", err)
	}
}

// TestInspectSimulatedChip: Inspect reports a line's name and its holder
// without requesting it, so a line Inspect looked at can still be
// requested, and a line held by Open shows its consumer.
func TestInspectSimulatedChip(t *testing.T) {
	c := newSimChip(t, 4, map[int]string{2: "SAFETY_LOOP"})
	st, err := Inspect(Spec{Chip: c.chip, Offset: -1, Name: "SAFETY_LOOP"})
	if err != nil || st.Offset != 2 || st.Used {
		t.Fatalf("Inspect(SAFETY_LOOP) = %+v, %v; want offset 2, unused", st, err)
	}
	if _, err := Inspect(Spec{Chip: c.chip, Offset: 4}); err == nil || !strings.Contains(err.Error(), "no line 4") {
		t.Errorf("Inspect(offset 4 of 4) = %v", err)
	}
	if _, err := Inspect(Spec{Chip: c.chip, Offset: -1, Name: "NOPE"}); err == nil {
		t.Error("Inspect of a missing line name: no error")
	}
	lines, err := Open(map[gate.Line]Spec{gate.LineOpen: {Chip: c.chip, Offset: 0}, gate.LineSafety: {Chip: c.chip, Offset: 2}}, "anprd-test")
	if err != nil {
		t.Fatalf("Open after Inspect: %v", err)
	}
	defer lines.Close()
	st, err = Inspect(Spec{Chip: c.chip, Offset: 0})
	if err != nil || !st.Used || st.Consumer != "anprd-test" || !st.Output {
		t.Errorf("Inspect(held output) = %+v, %v; want used by anprd-test, output", st, err)
	}
}
