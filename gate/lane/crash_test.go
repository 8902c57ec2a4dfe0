package lane_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"anprd/camera/track"
	"anprd/gate"
	"anprd/gate/lane"
	"anprd/gate/sim"
	"anprd/internal/access"
	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/presence"
	"anprd/internal/state"
	"anprd/sync/outbox"

	"github.com/rs/zerolog"
)

// The crash tests run a lane in a child process on a real state database
// (permits, presence, journal, outbox), with a fast simulated barrier, and
// SIGKILL it between a vehicle's decision and its passage's recording.
// The daemon's start-up replays the journal with access.Replay into the
// outbox before the lanes start; the child does the same when it starts,
// and the parent once more after the last kill.

// crashLanes: one entrance where every readable car is let in (charged),
// so that each vehicle takes a place in presence.
func crashLanes() []decide.Lane {
	pol, err := decide.DefaultPolicy(decide.Entrance).With(map[decide.Class]decide.Action{decide.Unregistered: decide.OpenCharge})
	if err != nil {
		panic(err)
	}
	return []decide.Lane{{ID: "in-1", Kind: decide.Entrance, Facility: "f1", Location: time.UTC, Policy: pol,
		AntiPassback: decide.PassbackSoft, MaxStay: 24 * time.Hour, MinConfidence: 0.5}}
}

// crashSeed makes the database the children share.
func crashSeed(t *testing.T, dir string) {
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := permit.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(&permit.Batch{Seq: 1, Changes: []permit.Change{{Op: permit.Put, Facility: &permit.Facility{ID: "f1"}}}}); err != nil {
		t.Fatal(err)
	}
}

func crashFail(err error) {
	fmt.Println("error:", err)
	os.Exit(1)
}

// crashChild runs the lane. Mode "hold": one vehicle is decided and let
// in, and the child waits (the parent kills it while the vehicle is in
// front of the arm). Mode "through": the vehicle goes through, and the
// child waits (killed while the passage waits for its evidence). Mode
// "run": vehicles pass one after another, each going through and its
// passage recorded, for ever. It prints "decided <plate> <id>" once a
// vehicle's decision is committed (its journal entry is there), "through
// <plate>" once the journal says it went through, and "recorded <plate>"
// once the outbox has its passage.
func crashChild(dir, mode, prefix string) {
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		crashFail(err)
	}
	st, err := permit.Open(db.DB)
	if err != nil {
		crashFail(err)
	}
	pres, err := presence.Open(db.DB)
	if err != nil {
		crashFail(err)
	}
	desk, err := access.New(st, pres, crashLanes())
	if err != nil {
		crashFail(err)
	}
	ob, err := outbox.Open(db.DB, outbox.Options{Max: 1 << 20, Kept: access.Forget})
	if err != nil {
		crashFail(err)
	}
	ps, err := access.Replay(db.DB, ob.Record)
	if err != nil {
		crashFail(err)
	}
	fmt.Println("replayed", len(ps))
	sb := sim.New(sim.Options{OpenTime: 80 * time.Millisecond, CloseTime: 80 * time.Millisecond, AutoClose: 50 * time.Millisecond})
	b, err := gate.New(sb, gate.Options{Lane: "in-1", Pulse: 40 * time.Millisecond, Settle: 50 * time.Millisecond, Log: zerolog.Nop()})
	if err != nil {
		crashFail(err)
	}
	l, err := lane.New(lane.Options{Site: "s1", Device: "box-1", Lane: "in-1", Direction: "entry", Barrier: b,
		Desk: desk, Sink: ob, Log: zerolog.Nop(), EvidenceWait: map[bool]time.Duration{true: time.Minute, false: 200 * time.Millisecond}[mode == "through"]})
	if err != nil {
		crashFail(err)
	}
	go func() {
		if err := l.Run(context.Background()); err != nil {
			crashFail(err)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	fmt.Println("ready")
	wait := func(what string, cond func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				crashFail(fmt.Errorf("%s: timed out", what))
			}
		}
	}
	for i := 0; ; i++ {
		plate := fmt.Sprintf("%s%04d", prefix, i)
		sb.SetArming(true)
		l.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Early, Plate: plate, Conf: 0.95, TrackID: uint64(i + 1),
			First: time.Now(), Last: time.Now(), Frames: []uint64{1, 2}}})
		var id passage.ID
		wait("decision", func() bool {
			es, err := access.Pending(db.DB)
			if err != nil {
				crashFail(err)
			}
			for _, e := range es {
				if e.Passage.Decision != nil && e.Passage.Decision.Plate == plate {
					id = e.Passage.ID
					return true
				}
			}
			return false
		})
		fmt.Println("decided", plate, id)
		if mode == "hold" {
			select {}
		}
		wait("arm up", func() bool { return sb.Position() == 1 })
		sb.SetSafety(true)
		time.Sleep(20 * time.Millisecond)
		sb.SetArming(false)
		time.Sleep(20 * time.Millisecond)
		sb.SetSafety(false)
		if mode == "through" {
			wait("through", func() bool {
				es, err := access.Pending(db.DB)
				if err != nil {
					crashFail(err)
				}
				return len(es) == 1 && es[0].Passage.Gate.Passed
			})
			fmt.Println("through", plate)
			select {}
		}
		time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
		if i%2 == 0 { // every other vehicle's evidence comes; the rest wait it out
			l.Offer(lane.ReadEvent{Event: track.Event{Kind: track.Final, Plate: plate, Conf: 0.95, TrackID: uint64(i + 1), Last: time.Now()},
				Evidence: passage.Evidence{Plate: plate + "-plate.jpg"}})
		}
		wait("record", func() bool {
			s, err := ob.Get(id)
			if err != nil {
				crashFail(err)
			}
			return s != nil
		})
		fmt.Println("recorded", plate)
		wait("arm down", func() bool { return sb.Position() == 0 })
	}
}

// runCrashChild starts a child and returns what it printed until it was
// killed after kill said so (or it died).
func runCrashChild(t *testing.T, dir, mode, prefix string, kill func(line string) bool) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWithPassageInHand$")
	cmd.Env = append(os.Environ(), "ANPRD_TEST_LANE_CRASH="+dir, "ANPRD_TEST_LANE_MODE="+mode, "ANPRD_TEST_LANE_PREFIX="+prefix)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		l := sc.Text()
		lines = append(lines, l)
		if strings.HasPrefix(l, "error:") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %s", l)
		}
		if kill(l) {
			break
		}
	}
	cmd.Process.Kill() // SIGKILL: nothing runs after it
	cmd.Wait()
	return lines
}

// reopened is the database after a kill, with the outbox and journal.
type reopened struct {
	db   *state.DB
	ob   *outbox.Outbox
	pres *presence.Store
}

func reopen(t *testing.T, dir string) *reopened {
	t.Helper()
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatalf("reopen after the kill: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	ob, err := outbox.Open(db.DB, outbox.Options{Max: 1 << 20, Kept: access.Forget})
	if err != nil {
		t.Fatal(err)
	}
	pres, err := presence.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	return &reopened{db: db, ob: ob, pres: pres}
}

// passages are the outbox's passages, by plate decided on.
func (r *reopened) passages(t *testing.T) map[string][]passage.Passage {
	t.Helper()
	es, err := r.ob.Next(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]passage.Passage{}
	for _, e := range es {
		if e.Kind != outbox.KindPassage {
			continue
		}
		var p passage.Passage
		if err := json.Unmarshal(e.Data, &p); err != nil {
			t.Fatal(err)
		}
		out[p.Decision.Plate] = append(out[p.Decision.Plate], p)
	}
	return out
}

// TestKilledWithPassageInHand: anprd killed while a vehicle it let in is
// in front of the arm (decided, not through, not recorded), or once it
// went through while its passage waits for the evidence. At the next
// start the journal's entry becomes the vehicle's passage, once, saying
// that whether it went through is unknown (or that it went through); its
// presence entry stands and the passage carries it; a second replay
// (another restart) adds nothing.
func TestKilledWithPassageInHand(t *testing.T) {
	if dir := os.Getenv("ANPRD_TEST_LANE_CRASH"); dir != "" {
		crashChild(dir, os.Getenv("ANPRD_TEST_LANE_MODE"), os.Getenv("ANPRD_TEST_LANE_PREFIX"))
		return
	}
	for _, c := range []struct {
		mode, killAt string
		unknown      bool // the replayed passage says whether it passed is unknown
	}{{"hold", "decided", true}, {"through", "through", false}} {
		t.Run(c.mode, func(t *testing.T) { killedWithPassageInHand(t, c.mode, c.killAt, c.unknown) })
	}
}

func killedWithPassageInHand(t *testing.T, mode, killAt string, unknown bool) {
	dir := t.TempDir()
	crashSeed(t, dir)
	var decided passage.ID
	runCrashChild(t, dir, mode, "CR", func(l string) bool {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "decided" {
			var err error
			if decided, err = passage.ParseID(f[2]); err != nil {
				t.Fatal(err)
			}
		}
		return len(f) > 0 && f[0] == killAt
	})
	if decided.IsZero() {
		t.Fatal("the child decided nothing")
	}
	r := reopen(t, dir)
	if ps := r.passages(t); len(ps) != 0 {
		t.Fatalf("passages in the outbox before the replay: %v", ps)
	}
	for round := range 2 {
		ps, err := access.Replay(r.db.DB, r.ob.Record)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 - round; len(ps) != want {
			t.Errorf("replay %d handed over %d passages, want %d", round, len(ps), want)
		}
	}
	ps := r.passages(t)["CR0000"]
	if len(ps) != 1 {
		t.Fatalf("%d passages of the vehicle, want 1: %+v", len(ps), ps)
	}
	p := ps[0]
	if p.ID != decided || p.Gate.Action != passage.Opened || p.Gate.Passed == unknown || p.Gate.PassedUnknown != unknown ||
		p.Timings.Passed.IsZero() == !unknown || p.Decision.Action != decide.OpenCharge || p.Read.Plate != "CR0000" ||
		p.Timings.Decided.IsZero() || p.Timings.Command.IsZero() != unknown || p.Validate() != nil {
		t.Errorf("recovered passage %+v gate %+v timings %+v decision %+v", p, p.Gate, p.Timings, p.Decision)
	}
	if p.Presence == nil || p.Presence.Enter == nil || p.Presence.Enter.Plate != "CR0000" {
		t.Errorf("recovered passage's presence %+v", p.Presence)
	}
	var inside *presence.Vehicle
	err := r.pres.View(func(tx *presence.Tx) error {
		var err error
		inside, err = tx.Inside("f1", "CR0000")
		return err
	})
	if err != nil || inside == nil {
		t.Errorf("presence entry of the vehicle: %v, %v; it stands", inside, err)
	}
	if es, err := access.Pending(r.db.DB); err != nil || len(es) != 0 {
		t.Errorf("journal after the replay: %v, %v", es, err)
	}
	if s, _ := r.ob.Stats(); s.Passages != 1 {
		t.Errorf("outbox holds %d passages", s.Passages)
	}
}

// TestKilledAtRandom kills a lane passing vehicles at random moments,
// three times, each child replaying the journal when it starts: every
// vehicle decided has exactly one passage (nothing lost, nothing
// doubled), every vehicle recorded inside has one, and the journal is
// empty at the end.
func TestKilledAtRandom(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("ANPRD_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	dir := t.TempDir()
	crashSeed(t, dir)
	decided := map[string]passage.ID{}
	recorded := map[string]bool{}
	for run := range 3 {
		prefix := fmt.Sprintf("K%c", 'A'+run)
		deadline := time.Now().Add(time.Duration(300+rng.IntN(900)) * time.Millisecond)
		runCrashChild(t, dir, "run", prefix, func(l string) bool {
			f := strings.Fields(l)
			switch {
			case len(f) == 3 && f[0] == "decided":
				id, err := passage.ParseID(f[2])
				if err != nil {
					t.Fatal(err)
				}
				decided[f[1]] = id
			case len(f) == 2 && f[0] == "recorded":
				recorded[f[1]] = true
			}
			return time.Now().After(deadline)
		})
	}
	r := reopen(t, dir)
	if _, err := access.Replay(r.db.DB, r.ob.Record); err != nil {
		t.Fatal(err)
	}
	ps := r.passages(t)
	unknown := 0
	for plate, id := range decided {
		got := ps[plate]
		if len(got) != 1 || got[0].ID != id {
			t.Errorf("vehicle %s (%s): %d passages %+v, want exactly one (seed %d)", plate, id, len(got), got, seed)
			continue
		}
		if got[0].Gate.PassedUnknown {
			unknown++
			if recorded[plate] {
				t.Errorf("vehicle %s was recorded through, and replayed as unknown (seed %d)", plate, seed)
			}
		}
	}
	for plate, got := range ps {
		if _, ok := decided[plate]; !ok && len(got) != 1 {
			t.Errorf("vehicle %s, decided at a kill, has %d passages %+v (seed %d)", plate, len(got), got, seed)
		}
	}
	inside, err := r.pres.List("f1")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range inside {
		if len(ps[v.Plate]) != 1 {
			t.Errorf("vehicle %s inside with %d passages (seed %d)", v.Plate, len(ps[v.Plate]), seed)
		}
	}
	if es, err := access.Pending(r.db.DB); err != nil || len(es) != 0 {
		t.Errorf("journal after the replay: %d entries, %v", len(es), err)
	}
	t.Logf("seed %d: %d vehicles decided, %d recorded by their lane, %d replayed as unknown", seed, len(decided), len(recorded), unknown)
	if len(recorded) == 0 {
		t.Errorf("no vehicle recorded before the kills (seed %d); the test checked little", seed)
	}
}
