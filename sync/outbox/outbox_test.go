package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/presence"
	"anprd/internal/state"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"
)

var base = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

// testPassage is passage i with a fixed id (its time base+i ms, its
// random part i), so a test can make the same passage again.
func testPassage(i int) passage.Passage {
	at := base.Add(time.Duration(i) * time.Millisecond)
	var id passage.ID
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(at.UnixMilli()))
	copy(id[:6], b[2:])
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	d, _ := passage.FromDecision(decide.Decision{Class: decide.Permit, Reason: decide.PermitValid, Action: decide.Open, Plate: "EL43210"})
	return passage.Passage{ID: id, Site: "p1", Device: "box-1", Lane: "in-1", Direction: "entry", Kind: passage.Vehicle, Time: at,
		Read: &passage.Read{Plate: "EL43210", Conf: 0.9}, Decision: d, Gate: passage.Gate{Action: passage.Opened, Passed: true}}
}

func openDB(t testing.TB, dir string) *state.DB {
	t.Helper()
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newOutbox(t testing.TB, o Options) (*Outbox, *state.DB) {
	t.Helper()
	db := openDB(t, t.TempDir())
	if o.Metrics == nil {
		o.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	ob, err := Open(db.DB, o)
	if err != nil {
		t.Fatal(err)
	}
	return ob, db
}

func kinds(es []Entry) string {
	s := ""
	for _, e := range es {
		s += string(rune(e.Kind))
	}
	return s
}

func TestRecordNextDone(t *testing.T) {
	ob, _ := newOutbox(t, Options{Max: 100, Evidence: true})
	p0 := testPassage(0)
	p1 := testPassage(1)
	p1.Evidence = passage.Evidence{Plate: "2026-11-24/a-plate.jpg", Scene: "2026-11-24/a-scene.jpg"}
	p1.Presence = &passage.Presence{Facility: "p1", Enter: &presence.Vehicle{Facility: "p1", Plate: "EL43210", Entered: p1.Time, Source: presence.FromLane}}
	for _, p := range []passage.Passage{p0, p1, p0} {
		if err := ob.Record(p); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-ob.Wake():
	default:
		t.Error("Record did not wake the uplink")
	}
	if got := testutil.ToFloat64(ob.m.duplicates); got != 1 {
		t.Errorf("duplicates = %v, want 1", got)
	}
	es, err := ob.Next(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if kinds(es) != "ppris" {
		t.Fatalf("entries %q, want pp r i s", kinds(es))
	}
	var back passage.Passage
	if err := json.Unmarshal(es[1].Data, &back); err != nil || back.ID != p1.ID {
		t.Fatalf("passage entry data: %v %s", err, es[1].Data)
	}
	if string(es[3].Data) != p1.Evidence.Plate || es[3].ID != p1.ID {
		t.Errorf("plate entry %+v", es[3])
	}
	var pm struct {
		Passage string `json:"passage"`
		Enter   struct{ Plate string }
	}
	if err := json.Unmarshal(es[2].Data, &pm); err != nil || pm.Passage != p1.ID.String() || pm.Enter.Plate != "EL43210" {
		t.Errorf("presence entry %s", es[2].Data)
	}
	st, _ := ob.Stats()
	if st.Passages != 2 || st.Entries != 5 || !st.Oldest.Equal(p0.Time) {
		t.Errorf("stats %+v", st)
	}
	// Next after a seq, with a limit.
	if es2, _ := ob.Next(es[1].Seq, 2); len(es2) != 2 || es2[0].Seq != es[2].Seq {
		t.Errorf("Next(after %d, 2) = %+v", es[1].Seq, es2)
	}

	if err := ob.Done([]uint64{es[0].Seq, es[2].Seq, 999}); err != nil {
		t.Fatal(err)
	}
	st, _ = ob.Stats()
	if st.Passages != 1 || st.Entries != 3 || !st.Oldest.Equal(p1.Time) {
		t.Errorf("stats after done %+v", st)
	}
	if s, _ := ob.Get(p0.ID); s == nil || !s.Sent || s.Passage.ID != p0.ID {
		t.Errorf("local copy of a sent passage: %+v", s)
	}
	if s, _ := ob.Get(p1.ID); s == nil || s.Sent {
		t.Errorf("local copy of a waiting passage: %+v", s)
	}
	// A sent passage handed over again is still a duplicate.
	if err := ob.Record(p0); err != nil {
		t.Fatal(err)
	}
	if st2, _ := ob.Stats(); st2.Passages != 1 {
		t.Errorf("a sent passage was queued again: %+v", st2)
	}
}

func TestEvidenceOff(t *testing.T) {
	ob, _ := newOutbox(t, Options{Max: 100})
	p := testPassage(0)
	p.Evidence.Scene = "x.jpg"
	ob.Record(p)
	if es, _ := ob.Next(0, 10); kinds(es) != "p" {
		t.Errorf("entries %q with evidence off", kinds(es))
	}
}

func TestInvalidPassageRefused(t *testing.T) {
	ob, _ := newOutbox(t, Options{Max: 100})
	p := testPassage(0)
	p.Direction = "sideways"
	if err := ob.Record(p); err == nil {
		t.Fatal("invalid passage recorded")
	}
	if st, _ := ob.Stats(); st.Entries != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestFullPolicies(t *testing.T) {
	t.Run("drop_oldest", func(t *testing.T) {
		var gaveWay []passage.ID
		ob, _ := newOutbox(t, Options{Max: 3, Evidence: true, OnDrop: func(id passage.ID, p Policy) {
			if p != DropOldest {
				t.Errorf("policy %v", p)
			}
			gaveWay = append(gaveWay, id)
		}})
		for i := range 5 {
			p := testPassage(i)
			p.Evidence.Scene = "s.jpg"
			if err := ob.Record(p); err != nil {
				t.Fatal(err)
			}
		}
		// Send the first remaining one so an orphan image entry leads q.
		es, _ := ob.Next(0, 100)
		if len(es) != 6 || es[0].ID != testPassage(2).ID {
			t.Fatalf("entries %d, first %v", len(es), es[0].ID)
		}
		ob.Done([]uint64{es[0].Seq})
		for i := 5; i <= 6; i++ {
			p := testPassage(i)
			p.Evidence.Scene = "s.jpg"
			ob.Record(p)
		}
		if len(gaveWay) != 3 || gaveWay[0] != testPassage(0).ID || gaveWay[1] != testPassage(1).ID || gaveWay[2] != testPassage(3).ID {
			t.Errorf("gave way %v", gaveWay)
		}
		st, _ := ob.Stats()
		if st.Passages != 3 || st.Entries != 7 || st.Dropped != 3 || !st.Full() {
			t.Errorf("stats %+v", st)
		}
		if got := testutil.ToFloat64(ob.m.dropped.WithLabelValues("drop_oldest")); got != 3 {
			t.Errorf("dropped metric %v", got)
		}
		if s, _ := ob.Get(testPassage(0).ID); s != nil {
			t.Error("a passage that gave way is still kept")
		}
		// The orphan image of passage 2 is still sent; passages 4, 5, 6 wait.
		es, _ = ob.Next(0, 100)
		if kinds(es) != "spspsps" || es[0].ID != testPassage(2).ID {
			t.Errorf("entries %q", kinds(es))
		}
	})
	t.Run("refuse_new", func(t *testing.T) {
		called := 0
		ob, _ := newOutbox(t, Options{Max: 2, Policy: RefuseNew, OnDrop: func(passage.ID, Policy) { called++ }})
		ob.Record(testPassage(0))
		ob.Record(testPassage(1))
		if err := ob.Record(testPassage(2)); !errors.Is(err, ErrFull) {
			t.Fatalf("Record when full = %v", err)
		}
		if s, _ := ob.Get(testPassage(2).ID); s != nil || called != 1 {
			t.Errorf("refused passage kept (%v) or not reported (%d)", s, called)
		}
		if got := testutil.ToFloat64(ob.m.dropped.WithLabelValues("refuse_new")); got != 1 {
			t.Errorf("dropped metric %v", got)
		}
		if st, _ := ob.Stats(); st.Passages != 2 || st.Dropped != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestSweep(t *testing.T) {
	defer func(n int) { sweepChunk = n }(sweepChunk)
	sweepChunk = 100 // several transactions
	ob, _ := newOutbox(t, Options{Max: 10000})
	for i := range 250 {
		if err := ob.Record(testPassage(i)); err != nil {
			t.Fatal(err)
		}
	}
	es, _ := ob.Next(0, 10000)
	var seqs []uint64
	for _, e := range es[:240] {
		seqs = append(seqs, e.Seq)
	}
	ob.Done(seqs)
	// Keep the last 100 ms: passages 0..149 are older.
	now := base.Add(250 * time.Millisecond)
	n, err := ob.Sweep(now, 100*time.Millisecond)
	if err != nil || n != 150 {
		t.Fatalf("Sweep = %d, %v; want 150", n, err)
	}
	if s, _ := ob.Get(testPassage(149).ID); s != nil {
		t.Error("old sent passage kept")
	}
	if s, _ := ob.Get(testPassage(150).ID); s == nil {
		t.Error("recent sent passage swept")
	}
	// Waiting passages are kept however old.
	n, _ = ob.Sweep(now.Add(time.Hour), time.Millisecond)
	if n != 90 {
		t.Errorf("second sweep = %d, want 90", n)
	}
	if s, _ := ob.Get(testPassage(249).ID); s == nil || s.Sent {
		t.Error("a waiting passage was swept")
	}
}

func TestOpenNeedsMigrations(t *testing.T) {
	db, err := bolt.Open(t.TempDir()+"/x.db", 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(db, Options{Max: 1}); err == nil {
		t.Error("Open without the buckets succeeded")
	}
}

func TestGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	ob, _ := newOutbox(t, Options{Max: 10})
	ob.RegisterGauges(reg, func() time.Time { return base.Add(time.Minute) })
	ob.Record(testPassage(0))
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n != 4 {
		t.Fatalf("gauges %d, %v", n, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "anprd_outbox_oldest_age_seconds" && mf.Metric[0].Gauge.GetValue() != 60 {
			t.Errorf("oldest age %v", mf.Metric[0].Gauge.GetValue())
		}
	}
}

// TestKeptInTheTransaction: Kept runs inside Record's transaction for a
// passage kept and for one kept already (the lanes' journal forgets it
// there); what it writes commits with the passage, and its error fails
// the Record and keeps nothing.
func TestKeptInTheTransaction(t *testing.T) {
	var fail error
	var seen []passage.ID
	ob, db := newOutbox(t, Options{Max: 10, Kept: func(tx *bolt.Tx, id passage.ID) error {
		seen = append(seen, id)
		if fail != nil {
			return fail
		}
		b, err := tx.CreateBucketIfNotExists([]byte("kept-test"))
		if err != nil {
			return err
		}
		return b.Put(id[:], []byte{1})
	}})
	p0, p1 := testPassage(0), testPassage(1)
	if err := ob.Record(p0); err != nil {
		t.Fatal(err)
	}
	if err := ob.Record(p0); err != nil { // a replay of a passage already kept
		t.Fatal(err)
	}
	fail = errors.New("journal unwritable")
	if err := ob.Record(p1); !errors.Is(err, fail) {
		t.Fatalf("Record with a failing Kept = %v", err)
	}
	if s, _ := ob.Get(p1.ID); s != nil {
		t.Error("a passage whose Kept failed was kept")
	}
	if len(seen) != 3 || seen[0] != p0.ID || seen[1] != p0.ID || seen[2] != p1.ID {
		t.Errorf("Kept saw %v", seen)
	}
	err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("kept-test")).Get(p0.ID[:]) == nil {
			t.Error("what Kept wrote did not commit")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := ob.Stats(); st.Passages != 1 {
		t.Errorf("%d passages waiting", st.Passages)
	}
}
