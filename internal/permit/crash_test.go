package permit_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"anprd/internal/permit"
	"anprd/internal/state"
)

const crashBatch = 400 // permits per batch

// crashData is the data set after batches 1..k of the crash test: batch j
// adds permits j-0.. with two plates each, deletes batch j-2's, and sets
// the tenant of permit "state" to j. Every fourth step is a snapshot of
// the same set instead of a batch.
func crashData(k int) []permit.Change {
	cs := []permit.Change{product("m"), pput("state", "m", strconv.Itoa(k), "ST00001")}
	for j := max(1, k-1); j <= k; j++ {
		for i := range crashBatch {
			cs = append(cs, pput(fmt.Sprintf("%d-%d", j, i), "m", "t", fmt.Sprintf("P%04dQ%03d", j, i), fmt.Sprintf("R%04dS%03d", j, i)))
		}
	}
	return cs
}

func crashBatchOf(k int) *permit.Batch {
	b := &permit.Batch{Seq: uint64(k)}
	if k == 1 {
		b.Changes = append(b.Changes, product("m"))
	}
	b.Changes = append(b.Changes, pput("state", "m", strconv.Itoa(k), "ST00001"))
	for i := range crashBatch {
		b.Changes = append(b.Changes, pput(fmt.Sprintf("%d-%d", k, i), "m", "t", fmt.Sprintf("P%04dQ%03d", k, i), fmt.Sprintf("R%04dS%03d", k, i)))
		if k > 2 {
			b.Changes = append(b.Changes, pdel(fmt.Sprintf("%d-%d", k-2, i)))
		}
	}
	return b
}

// crashChild applies batches and snapshots for ever from where the
// database is; the parent kills it.
func crashChild(dir string) {
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	s, err := permit.Open(db.DB)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	seq, _ := s.Seq()
	fmt.Println("ready")
	for k := int(seq) + 1; ; k++ {
		if k%4 == 0 {
			sn, err := s.NewSnapshot()
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			cs := crashData(k)
			for lo := 0; lo < len(cs); lo += 150 {
				if err := sn.Add(cs[lo:min(lo+150, len(cs))]); err != nil {
					fmt.Println("error:", err)
					os.Exit(1)
				}
			}
			err = sn.Commit(uint64(k))
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			continue
		}
		if err := s.Apply(crashBatchOf(k)); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
}

// TestKilledMidBatch kills a process that applies batches and loads
// snapshots at random moments: after each kill the store holds exactly
// the data of the last sequence number it records, never part of a
// batch or a mix of two sets (bbolt tests/robustness does the same with
// failpoints).
func TestKilledMidBatch(t *testing.T) {
	if dir := os.Getenv("ANPRD_TEST_PERMIT_CRASH"); dir != "" {
		crashChild(dir)
		return
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("ANPRD_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	kills := 4
	if testing.Short() {
		kills = 2
	}
	dir := t.TempDir()
	var seqs []uint64
	for range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledMidBatch$")
		cmd.Env = append(os.Environ(), "ANPRD_TEST_PERMIT_CRASH="+dir)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q (seed %d)", line, seed)
		}
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		seqs = append(seqs, checkCrashState(t, dir, seed))
	}
	t.Logf("seed %d: killed at sequence numbers %v", seed, seqs)
	if seqs[len(seqs)-1] == 0 {
		t.Errorf("no batch applied before the kills (seed %d); the test checked nothing", seed)
	}
}

func checkCrashState(t *testing.T, dir string, seed int64) uint64 {
	t.Helper()
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatalf("reopen after kill: %v (seed %d)", err, seed)
	}
	defer db.Close()
	s, err := permit.Open(db.DB)
	if err != nil {
		t.Fatalf("permit.Open after kill: %v (seed %d)", err, seed)
	}
	seq, _ := s.Seq()
	if seq == 0 {
		return 0
	}
	want := map[string]string{}
	for _, c := range crashData(int(seq)) {
		if c.Permit != nil {
			want[c.Permit.ID] = c.Permit.Tenant + " " + strings.Join(c.Permit.Plates, ",")
		}
	}
	err = s.View(func(v *permit.View) error {
		got := map[string]string{}
		dump, err := v.Dump()
		if err != nil {
			return err
		}
		for _, c := range dump {
			if c.Permit != nil {
				got[c.Permit.ID] = c.Permit.Tenant + " " + strings.Join(c.Permit.Plates, ",")
			}
		}
		if len(got) != len(want) {
			t.Errorf("seq %d: %d permits, want %d (seed %d)", seq, len(got), len(want), seed)
		}
		var bad []string
		for id, w := range want {
			if got[id] != w {
				bad = append(bad, fmt.Sprintf("%s=%q want %q", id, got[id], w))
			}
		}
		slices.Sort(bad)
		if len(bad) > 0 {
			t.Errorf("seq %d: %d permits differ, e.g. %v (seed %d)", seq, len(bad), bad[:min(3, len(bad))], seed)
		}
		// The index agrees with the records.
		if c := v.Counts(); c.Plates != 2*(len(want)-1)+1 {
			t.Errorf("seq %d: %d plates indexed, want %d (seed %d)", seq, c.Plates, 2*(len(want)-1)+1, seed)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}
