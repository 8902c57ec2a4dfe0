package outbox

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/evidence"
	"anprd/internal/passage"
	"anprd/internal/presence"
	"anprd/internal/state"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"
)

const week = 7 * 24 * time.Hour

// TestFollowUp: which passages keep their evidence until the central
// system acknowledges them (docs/protocol.md, "Which passages need
// follow-up"; the rules are domain.md's "Unregistered vehicles, charges
// and sanctions", from seed 004_*.txt: the short-term tariff, invoices to
// the owner, control sanctions).
func TestFollowUp(t *testing.T) {
	dec := func(c decide.Class, a decide.Action) *passage.Decision {
		return &passage.Decision{Class: c, Action: a, Plate: "EL43210"}
	}
	through := passage.Gate{Action: passage.Opened, Passed: true}
	for _, c := range []struct {
		name string
		p    passage.Passage
		want bool
	}{
		{"permit let in", passage.Passage{Kind: passage.Vehicle, Decision: dec(decide.Permit, decide.Open), Gate: through}, false},
		{"account charged", passage.Passage{Kind: passage.Vehicle, Decision: dec(decide.Account, decide.OpenCharge), Gate: through}, true},
		{"permit in use charged", passage.Passage{Kind: passage.Vehicle, Decision: dec(decide.PermitInUse, decide.OpenCharge), Gate: through}, true},
		{"unregistered exit charged", passage.Passage{Kind: passage.Vehicle, Direction: "exit", Decision: dec(decide.Unregistered, decide.OpenCharge), Gate: through}, true},
		{"unreadable let out", passage.Passage{Kind: passage.Vehicle, Decision: dec(decide.Unreadable, decide.Open), Gate: through}, true},
		{"free-flow block listed", passage.Passage{Kind: passage.Vehicle, Decision: dec(decide.BlockListed, decide.Deny), Gate: passage.Gate{Action: passage.NoBarrier, Passed: true}}, true},
		{"free-flow permit", passage.Passage{Kind: passage.Vehicle, Decision: dec(decide.Permit, decide.Open), Gate: passage.Gate{Action: passage.NoBarrier, Passed: true}}, false},
		{"unregistered turned away", passage.Passage{Kind: passage.Vehicle, Decision: dec(decide.Unregistered, decide.Deny), Gate: passage.Gate{Action: passage.Kept}}, false},
		{"account backed out", passage.Passage{Kind: passage.Vehicle, Decision: dec(decide.Account, decide.OpenCharge), Gate: passage.Gate{Action: passage.Opened}}, false},
		{"tailgater", passage.Passage{Kind: passage.Tailgate, Decision: dec(decide.Permit, decide.Open), Gate: through}, true},
		{"manual opening", passage.Passage{Kind: passage.Manual, Manual: &passage.ManualOpen{Source: "button"}, Gate: through}, false},
	} {
		if got := FollowUp(&c.p); got != c.want {
			t.Errorf("%s: FollowUp = %v, want %v", c.name, got, c.want)
		}
	}
}

// retentionFixture is an outbox with evidence on disk for passages of
// every retention case, all delivered except one.
type retentionFixture struct {
	ob    *Outbox
	db    interface{ Close() error }
	store *evidence.Store
	dir   string
	ps    map[string]passage.Passage
}

func newRetentionFixture(t *testing.T, dbDir string) *retentionFixture {
	t.Helper()
	f := &retentionFixture{dir: t.TempDir(), ps: map[string]passage.Passage{}}
	var err error
	if f.store, err = evidence.New(f.dir); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, dbDir)
	f.db = db
	if f.ob, err = Open(db.DB, Options{Max: 100, Evidence: true, Metrics: NewMetrics(prometheus.NewRegistry())}); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, i int, class decide.Class, action decide.Action, kind passage.Kind, gate passage.Gate, shareWith string) {
		p := testPassage(i)
		p.Kind, p.Gate = kind, gate
		p.Decision.Class, p.Decision.Action = class, action
		p.Presence = &passage.Presence{Facility: "p1", Enter: &presence.Vehicle{Facility: "p1", Plate: "EL43210", Entered: p.Time, Source: presence.FromLane}}
		if shareWith != "" {
			p.Evidence = f.ps[shareWith].Evidence
		} else {
			pp, sp, err := f.store.Save(p.Time, "in-1", uint64(i), []byte("plate"), []byte("scene"))
			if err != nil {
				t.Fatal(err)
			}
			p.Evidence = passage.Evidence{Plate: pp, Scene: sp}
			for _, rel := range []string{pp, sp} {
				os.Chtimes(filepath.Join(f.dir, rel), p.Time, p.Time)
			}
		}
		f.ps[name] = p
		if err := f.ob.Record(p); err != nil {
			t.Fatal(err)
		}
	}
	opened := passage.Gate{Action: passage.Opened, Passed: true}
	mk("permit", 1, decide.Permit, decide.Open, passage.Vehicle, opened, "")
	mk("charged", 2, decide.Unregistered, decide.OpenCharge, passage.Vehicle, opened, "")
	mk("refused", 3, decide.Unregistered, decide.Deny, passage.Vehicle, passage.Gate{Action: passage.Kept}, "")
	// The refused car slipped through on the next opening: the tailgate
	// passage has the same read, and so the same images.
	mk("tailgate", 4, decide.Unregistered, decide.Deny, passage.Tailgate, opened, "refused")
	mk("undelivered", 5, decide.Permit, decide.Open, passage.Vehicle, opened, "")
	// Everything but the last is delivered.
	es, err := f.ob.Next(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range es {
		if e.ID != f.ps["undelivered"].ID {
			seqs = append(seqs, e.Seq)
		}
	}
	if err := f.ob.Done(seqs); err != nil {
		t.Fatal(err)
	}
	// And an image that belongs to no passage (a vehicle read, never
	// decided on).
	op, os_, _ := f.store.Save(base, "in-1", 99, []byte("p"), []byte("s"))
	for _, rel := range []string{op, os_} {
		os.Chtimes(filepath.Join(f.dir, rel), base, base)
	}
	f.ps["orphan"] = passage.Passage{Evidence: passage.Evidence{Plate: op, Scene: os_}}
	return f
}

func (f *retentionFixture) exists(t *testing.T, name string) (plate, files bool) {
	t.Helper()
	p := f.ps[name]
	n := 0
	for _, rel := range []string{p.Evidence.Plate, p.Evidence.Scene} {
		if _, err := os.Stat(filepath.Join(f.dir, rel)); err == nil {
			n++
		}
	}
	if n == 1 {
		t.Errorf("%s: one of its two images is gone", name)
	}
	files = n == 2
	if p.ID.IsZero() {
		return false, files
	}
	s, err := f.ob.Get(p.ID)
	if err != nil {
		t.Fatalf("%s: local copy: %v", name, err)
	}
	if s == nil {
		return false, files // swept
	}
	return s.Passage.Read != nil && s.Passage.Read.Plate != "", files
}

func (f *retentionFixture) want(t *testing.T, when string, kept map[string]bool) {
	t.Helper()
	for name, want := range kept {
		plate, files := f.exists(t, name)
		if files != want {
			t.Errorf("%s: %s's images kept %v, want %v", when, name, files, want)
		}
		if name != "orphan" && name != "refused" && plate != want {
			t.Errorf("%s: %s's plate kept %v, want %v", when, name, plate, want)
		}
	}
}

func TestRetention(t *testing.T) {
	defer func(n int) { retainScanChunk = n }(retainScanChunk)
	retainScanChunk = 2 // several read transactions
	f := newRetentionFixture(t, t.TempDir())
	all := map[string]bool{"permit": true, "charged": true, "refused": true, "tailgate": true, "undelivered": true, "orphan": true}

	// Six days on, nothing is past retention.
	res, err := f.ob.Retain(base.Add(6*24*time.Hour), week, f.store)
	if err != nil || res != (RetainResult{}) {
		t.Fatalf("Retain at 6 days = %+v, %v", res, err)
	}
	f.want(t, "6 days", all)

	// Eight days on: the delivered passages that need no follow-up lose
	// images and plate; the charged one and the tailgater keep both, and
	// the refused car keeps the images it shares with the tailgater; the
	// undelivered one keeps everything; the orphan images go.
	res, err = f.ob.Retain(base.Add(8*24*time.Hour), week, f.store)
	if err != nil {
		t.Fatal(err)
	}
	if res.Redacted != 2 || res.Held != 2 || res.Files != 4 {
		t.Errorf("Retain at 8 days = %+v, want 2 redacted (permit, refused), 2 held, 4 files (permit's, orphan's)", res)
	}
	f.want(t, "8 days", map[string]bool{"permit": false, "charged": true, "refused": true, "tailgate": true, "undelivered": true, "orphan": false})
	if s, _ := f.ob.Get(f.ps["refused"].ID); s.Passage.Read != nil || s.Passage.Evidence.Plate != "" || s.Passage.Decision.Plate != "" {
		t.Errorf("refused car's local copy not redacted: %+v", s.Passage)
	}
	s, _ := f.ob.Get(f.ps["permit"].ID)
	if p := s.Passage; p.Read != nil || p.Decision.Plate != "" || p.Presence.Enter.Plate != "" || p.Evidence != (passage.Evidence{}) ||
		p.Decision.Class != decide.Permit || p.Lane != "in-1" || !p.Time.Equal(f.ps["permit"].Time) {
		t.Errorf("redacted copy: %+v", p)
	}
	if got := testutil.ToFloat64(f.ob.m.held); got != 2 {
		t.Errorf("held gauge = %v", got)
	}
	if !f.ob.Held(f.ps["charged"].ID) || f.ob.Held(f.ps["permit"].ID) {
		t.Error("Held disagrees")
	}

	// The central system acknowledges the charged passage (and one this
	// box does not have); the next round applies the normal retention.
	held, unknown, err := f.ob.Acknowledge([]passage.ID{f.ps["charged"].ID, testPassage(77).ID}, base.Add(8*24*time.Hour))
	if err != nil || held != 1 || unknown != 1 {
		t.Fatalf("Acknowledge = %d, %d, %v", held, unknown, err)
	}
	if f.ob.Held(f.ps["charged"].ID) {
		t.Error("still held after the ack")
	}
	res, err = f.ob.Retain(base.Add(8*24*time.Hour+time.Hour), week, f.store)
	if err != nil || res.Redacted != 1 || res.Held != 1 || res.Files != 2 {
		t.Errorf("Retain after the ack = %+v, %v", res, err)
	}
	f.want(t, "after the ack", map[string]bool{"charged": false, "tailgate": true, "refused": true, "undelivered": true})

	// The local copies go after retention.passages, except the one still
	// held for follow-up and the one still waiting.
	n, err := f.ob.Sweep(base.Add(31*24*time.Hour), 30*24*time.Hour)
	if err != nil || n != 3 {
		t.Errorf("Sweep = %d, %v; want permit, charged, refused", n, err)
	}
	for name, want := range map[string]bool{"permit": false, "charged": false, "refused": false, "tailgate": true, "undelivered": true} {
		if s, _ := f.ob.Get(f.ps[name].ID); (s != nil) != want {
			t.Errorf("after Sweep: %s kept %v, want %v", name, s != nil, want)
		}
	}
	f.want(t, "after Sweep", map[string]bool{"tailgate": true})
	// The tailgater's ack, too, lets its images go at the next round.
	f.ob.Acknowledge([]passage.ID{f.ps["tailgate"].ID}, base.Add(31*24*time.Hour))
	if _, err := f.ob.Retain(base.Add(31*24*time.Hour), week, f.store); err != nil {
		t.Fatal(err)
	}
	f.want(t, "tailgater acked", map[string]bool{"tailgate": false, "refused": false})
	if plate, _ := f.exists(t, "undelivered"); !plate {
		t.Error("the undelivered passage lost its plate")
	}
}

// crashingFiles deletes through the real store until it has deleted n
// files, then stops the round as a crash would.
type crashingFiles struct {
	*evidence.Store
	n int
}

func (c *crashingFiles) Remove(path string) error {
	if c.n == 0 {
		return ErrStop
	}
	c.n--
	return c.Store.Remove(path)
}

// TestRetentionCrash: a round stopped after each possible number of
// deleted files, the database closed and opened again: nothing a passage
// kept for follow-up needs is gone, and the next round finishes the job.
func TestRetentionCrash(t *testing.T) {
	for stopAfter := range 2 { // the permit passage's two images are the first to go
		dbDir := t.TempDir()
		f := newRetentionFixture(t, dbDir)
		at := base.Add(8 * 24 * time.Hour)
		if _, err := f.ob.Retain(at, week, &crashingFiles{f.store, stopAfter}); !errors.Is(err, ErrStop) {
			t.Fatalf("stop after %d: %v", stopAfter, err)
		}
		// The process dies; the database is opened again.
		f.db.Close()
		db := openDB(t, dbDir)
		ob, err := Open(db.DB, Options{Max: 100, Evidence: true})
		if err != nil {
			t.Fatal(err)
		}
		f.ob = ob
		f.want(t, "after the crash", map[string]bool{"charged": true, "tailgate": true, "refused": true, "undelivered": true})
		if _, err := f.ob.Retain(at, week, f.store); err != nil {
			t.Fatal(err)
		}
		f.want(t, "after the next round", map[string]bool{"permit": false, "charged": true, "refused": true, "tailgate": true, "undelivered": true, "orphan": false})
	}
}

// slowFiles deletes through the store, a millisecond per image, so that
// a kill lands in the middle of a round.
type slowFiles struct{ *evidence.Store }

func (s slowFiles) Remove(path string) error {
	time.Sleep(time.Millisecond)
	return s.Store.Remove(path)
}

// killedRetentionPassage is passage i of the kill test: every third is
// charged (needs follow-up), the others are permits let in.
func killedRetentionPassage(i int) passage.Passage {
	p := testPassage(i)
	if i%3 == 0 {
		p.Decision.Class, p.Decision.Action = decide.Unregistered, decide.OpenCharge
	}
	return p
}

// TestKilledMidRetention kills a process in the middle of a retention
// round over 600 delivered passages with their images, at a random
// moment, and opens the database again: every passage kept for follow-up
// still has its images and its plate, every passage redacted has lost
// its images; the next round finishes the job.
func TestKilledMidRetention(t *testing.T) {
	const n = 600
	at := base.Add(8 * 24 * time.Hour)
	if dir := os.Getenv("ANPRD_TEST_RETENTION_CRASH"); dir != "" {
		db, err := state.Open(filepath.Join(dir, "state"), state.Migrations)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		ob, _ := Open(db.DB, Options{Max: 1 << 20, Evidence: true})
		store, _ := evidence.New(filepath.Join(dir, "evidence"))
		retainChunk = 20 // many transactions, so the kill can fall between any two
		fmt.Println("ready")
		_, err = ob.Retain(at, week, slowFiles{store})
		fmt.Println("done", err)
		select {} // wait for the kill
	}
	dir := t.TempDir()
	store, err := evidence.New(filepath.Join(dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(filepath.Join(dir, "state"), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := Open(db.DB, Options{Max: 1 << 20, Evidence: true})
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]passage.Passage, n)
	for i := range ps {
		p := killedRetentionPassage(i)
		pp, sp, err := store.Save(p.Time, "in-1", uint64(i), []byte("plate"), []byte("scene"))
		if err != nil {
			t.Fatal(err)
		}
		for _, rel := range []string{pp, sp} {
			os.Chtimes(filepath.Join(dir, "evidence", rel), p.Time, p.Time)
		}
		p.Evidence = passage.Evidence{Plate: pp, Scene: sp}
		ps[i] = p
	}
	if err := ob.RecordAll(ps); err != nil {
		t.Fatal(err)
	}
	es, _ := ob.Next(0, 10*n)
	var seqs []uint64
	for _, e := range es {
		seqs = append(seqs, e.Seq)
	}
	ob.Done(seqs)
	db.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledMidRetention$")
	cmd.Env = append(os.Environ(), "ANPRD_TEST_RETENTION_CRASH="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q", sc.Text())
	}
	// Kill it once it has started deleting, at a random moment after.
	deadline := time.Now().Add(20 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(dir, "evidence", "*", "*.jpg"))
		if len(left) < 2*n {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the child deleted nothing")
		}
		time.Sleep(time.Millisecond)
	}
	wait := time.Duration(rand.IntN(400)) * time.Millisecond
	time.Sleep(wait)
	cmd.Process.Kill()
	cmd.Wait()

	db = openDB(t, filepath.Join(dir, "state"))
	if ob, err = Open(db.DB, Options{Max: 1 << 20, Evidence: true}); err != nil {
		t.Fatal(err)
	}
	check := func(when string, finished bool) (redacted, gone int) {
		t.Helper()
		for i, p := range ps {
			s, err := ob.Get(p.ID)
			if err != nil || s == nil {
				t.Fatalf("%s: passage %d: %v, %v", when, i, s, err)
			}
			files := 0
			for _, rel := range []string{p.Evidence.Plate, p.Evidence.Scene} {
				if _, err := os.Stat(filepath.Join(dir, "evidence", rel)); err == nil {
					files++
				}
			}
			isRedacted := s.Passage.Read == nil
			switch {
			case FollowUp(&p) && (files != 2 || isRedacted):
				t.Fatalf("%s: charged passage %d lost evidence: %d images, redacted %v", when, i, files, isRedacted)
			case isRedacted && files != 0:
				t.Fatalf("%s: passage %d redacted with %d images left", when, i, files)
			case finished && !FollowUp(&p) && (!isRedacted || files != 0):
				t.Fatalf("%s: passage %d not done: %d images, redacted %v", when, i, files, isRedacted)
			}
			if isRedacted {
				redacted++
			}
			if files == 0 {
				gone++
			}
		}
		return redacted, gone
	}
	r, g := check("after the kill", false)
	t.Logf("killed after %v: %d passages redacted, %d without images", wait, r, g)
	if _, err := ob.Retain(at, week, store); err != nil {
		t.Fatal(err)
	}
	if r, _ := check("after the next round", true); r != n-n/3 {
		t.Errorf("%d redacted, want %d", r, n-n/3)
	}
}

// TestRetentionDamagedRecord: a local copy that cannot be read stops
// nothing else, but the images of no passage are not swept that round
// (the damaged one's cannot be told from them).
func TestRetentionDamagedRecord(t *testing.T) {
	f := newRetentionFixture(t, t.TempDir())
	bad := testPassage(50)
	err := f.ob.db.Update(func(tx *bolt.Tx) error {
		return open(tx).p.Put(bad.ID[:], []byte{stateSent, '{', 'x'})
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.ob.Retain(base.Add(8*24*time.Hour), week, f.store)
	if err == nil {
		t.Error("a damaged record went unreported")
	}
	if res.Redacted != 2 {
		t.Errorf("%+v: the others were not redacted", res)
	}
	f.want(t, "damaged record", map[string]bool{"permit": false, "charged": true, "orphan": true})
	if got := testutil.ToFloat64(f.ob.m.retentionErrors); got != 1 {
		t.Errorf("errors counted %v", got)
	}
}
