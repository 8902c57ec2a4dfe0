package outbox

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"anprd/internal/passage"
	"anprd/internal/presence"
	"anprd/internal/state"

	bolt "go.etcd.io/bbolt"
)

// crashPassage is passage i of the crash test: every third has a presence
// change, every fifth an evidence image, so that one Record writes one to
// three entries.
func crashPassage(i int) passage.Passage {
	p := testPassage(i)
	if i%3 == 0 {
		p.Presence = &passage.Presence{Facility: "p1", Enter: &presence.Vehicle{Facility: "p1", Plate: "EL43210", Entered: p.Time, Source: presence.FromLane}}
	}
	if i%5 == 0 {
		p.Evidence.Scene = fmt.Sprintf("d/%d-scene.jpg", i)
	}
	return p
}

// crashChild records passages from start on for ever, printing each
// number once Record has returned, while an uploader marks entries done
// as the uplink would; the parent kills it.
func crashChild(dir string, start int) {
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	ob, err := Open(db.DB, Options{Max: 1 << 20, Evidence: true})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	go func() {
		var after uint64
		for {
			es, err := ob.Next(after, 7)
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			var seqs []uint64
			for _, e := range es {
				seqs = append(seqs, e.Seq)
				after = e.Seq
			}
			if err := ob.Done(seqs); err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	fmt.Println("ready")
	for i := start; ; i++ {
		if err := ob.Record(crashPassage(i)); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("recorded", i)
	}
}

// TestKilledMidRecord kills a process that records passages (and marks
// uploaded ones done) at random moments, then reopens the database: every
// passage Record returned for is there exactly once, nothing else is
// (bar the one being recorded at the kill), and the queue, the local
// copies and the counters agree. The next run goes on from the first
// unconfirmed passage, handing it over again, as a restarted lane would.
func TestKilledMidRecord(t *testing.T) {
	if dir := os.Getenv("ANPRD_TEST_OUTBOX_CRASH"); dir != "" {
		start, _ := strconv.Atoi(os.Getenv("ANPRD_TEST_OUTBOX_START"))
		crashChild(dir, start)
		return
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("ANPRD_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	dir := t.TempDir()
	next := 0 // first passage not confirmed
	var confirmed []int
	for range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledMidRecord$")
		cmd.Env = append(os.Environ(), "ANPRD_TEST_OUTBOX_CRASH="+dir, "ANPRD_TEST_OUTBOX_START="+strconv.Itoa(next))
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q (seed %d)", sc.Text(), seed)
		}
		lines := make(chan string, 1<<16)
		go func() {
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		time.Sleep(time.Duration(150+rng.IntN(350)) * time.Millisecond)
		cmd.Process.Kill()
		for l := range lines {
			n, ok := strings.CutPrefix(l, "recorded ")
			if !ok {
				t.Fatalf("child: %s (seed %d)", l, seed)
			}
			i, _ := strconv.Atoi(n)
			if i != next {
				t.Fatalf("child recorded %d, expected %d", i, next)
			}
			next++
		}
		cmd.Wait()
		confirmed = append(confirmed, next)
		checkOutbox(t, dir, next, seed)
	}
	t.Logf("seed %d: passages confirmed before each kill: %v", seed, confirmed)
	if next == 0 {
		t.Errorf("nothing recorded before the kills (seed %d); the test checked nothing", seed)
	}
}

// checkOutbox: passages 0..n-1 are kept once each; n may be kept too (it
// was being recorded); nothing else. Queue and counters agree.
func checkOutbox(t *testing.T, dir string, n int, seed int64) {
	t.Helper()
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatalf("reopen after kill: %v (seed %d)", err, seed)
	}
	defer db.Close()
	want := map[passage.ID]int{}
	for i := 0; i <= n; i++ {
		want[crashPassage(i).ID] = i
	}
	err = db.View(func(tx *bolt.Tx) error {
		b := open(tx)
		kept := map[int]byte{}
		err := b.p.ForEach(func(k, v []byte) error {
			var id passage.ID
			copy(id[:], k)
			i, ok := want[id]
			if !ok {
				t.Errorf("passage %s kept but never recorded (seed %d)", id, seed)
				return nil
			}
			kept[i] = v[0]
			return nil
		})
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if _, ok := kept[i]; !ok {
				t.Errorf("passage %d confirmed but lost (seed %d)", i, seed)
			}
		}
		queued := map[passage.ID]bool{}
		entries, passages := 0, 0
		err = b.q.ForEach(func(k, v []byte) error {
			e, err := parseEntry(k, v)
			if err != nil {
				return err
			}
			entries++
			if _, ok := want[e.ID]; !ok {
				t.Errorf("entry %d for unknown passage %s", e.Seq, e.ID)
			}
			if e.Kind == KindPassage {
				passages++
				if queued[e.ID] {
					t.Errorf("passage %d queued twice (seed %d)", want[e.ID], seed)
				}
				queued[e.ID] = true
				if kept[want[e.ID]] != stateWaiting {
					t.Errorf("queued passage %d is in state %q (seed %d)", want[e.ID], kept[want[e.ID]], seed)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, st := range kept {
			if st == stateWaiting && !queued[crashPassage(i).ID] {
				t.Errorf("passage %d waits but is not queued (seed %d)", i, seed)
			}
		}
		if got := int(getU64(b.meta, keyEntries)); got != entries {
			t.Errorf("entry counter %d, queue holds %d (seed %d)", got, entries, seed)
		}
		if got := int(getU64(b.meta, keyPassages)); got != passages {
			t.Errorf("passage counter %d, queue holds %d (seed %d)", got, passages, seed)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
