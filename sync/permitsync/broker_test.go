package permitsync_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"anprd/internal/access"
	"anprd/internal/decide"
	"anprd/internal/permit"
	"anprd/internal/permit/permitgen"
	"anprd/internal/presence"
	"anprd/internal/state"
	"anprd/sync/central"
	"anprd/sync/mqtt"
	"anprd/sync/mqtt/mqtttest"
	"anprd/sync/permitsync"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
)

// TestSnapshotThroughBroker loads a snapshot of N permits through a real
// Mosquitto, paced by the box's progress, while a lane keeps deciding:
// every decision is answered during the load, the old data until the
// swap. N is 20,000 here; ANPRD_TEST_SNAPSHOT_PERMITS=1000000 runs the
// issue's million.
func TestSnapshotThroughBroker(t *testing.T) {
	n := 20000
	if s := os.Getenv("ANPRD_TEST_SNAPSHOT_PERMITS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	b := mqtttest.Start(t, mqtttest.Options{})
	topics := protocol.Topics{Prefix: "anpr/v1", Site: "p1", Device: "box-1"}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)

	db, err := state.Open(t.TempDir(), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, _ := permit.Open(db.DB)
	pres, _ := presence.Open(db.DB)
	// Before: the base data and one permit, as delta 1.
	if err := store.Apply(&permit.Batch{Seq: 1, Changes: append(permitgen.Base(), permit.Change{Op: permit.Put, Permit: permitgen.Permit(0)})}); err != nil {
		t.Fatal(err)
	}
	oslo, _ := time.LoadLocation("Europe/Oslo")
	lane := decide.Lane{ID: "in-1", Kind: decide.FreeFlowEntrance, Facility: permitgen.Facility, Location: oslo,
		Policy: decide.DefaultPolicy(decide.FreeFlowEntrance), MaxStay: 7 * 24 * time.Hour, MinConfidence: 0.5}
	desk, err := access.New(store, pres, []decide.Lane{lane})
	if err != nil {
		t.Fatal(err)
	}

	edge, _ := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "edge", Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond})
	s := permitsync.New(store, edge, permitsync.Options{Topics: topics, Key: pub, Log: zerolog.Nop()})
	edge.Subscribe("sync", 1, 64<<20, func(r mqtt.Received) { s.Handle(r.Topic, r.Payload) }, s.Filters()...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); edge.Run(ctx, nil) }()

	states := make(chan protocol.SyncState, 1024)
	cen, _ := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "central", Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond})
	cen.Subscribe("state", 1, 1<<20, func(r mqtt.Received) {
		var st protocol.SyncState
		if json.Unmarshal(r.Payload, &st) == nil {
			states <- st
		}
	}, topics.SyncState())
	wg.Add(1)
	go func() { defer wg.Done(); cen.Run(ctx, nil) }()
	for !edge.Connected() || !cen.Connected() {
		time.Sleep(10 * time.Millisecond)
	}

	signer := &central.Signer{Key: priv, Prefix: "anpr/v1", Site: "p1"}
	cs := permitgen.Base()
	for i := 0; i <= n; i++ {
		cs = append(cs, permit.Change{Op: permit.Put, Permit: permitgen.Permit(i)})
	}
	ms, err := signer.Snapshot("box-1", "big", 2, cs, 10000)
	if err != nil {
		t.Fatal(err)
	}

	// A lane decides every 5 ms: permit 0's plate, which only the old set
	// holds, and permit n's, which only the new one holds.
	var decisions atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	sawNew, oldAfterNew := false, false
	stop := make(chan struct{})
	lanes := make(chan struct{})
	now := time.Date(2026, 4, 15, 8, 0, 0, 0, oslo)
	go func() {
		defer close(lanes)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			start := time.Now()
			d, err := desk.Peek("in-1", decide.Read{Plate: permitgen.Plate(3 * n), Conf: 0.95, Time: now})
			d0, err0 := desk.Peek("in-1", decide.Read{Plate: permitgen.Plate(0), Conf: 0.95, Time: now})
			el := time.Since(start)
			if err != nil || err0 != nil {
				t.Errorf("decision failed: %v %v", err, err0)
				return
			}
			mu.Lock()
			lat = append(lat, el)
			if d.Class == decide.Permit {
				sawNew = true
			}
			if sawNew && d0.Class != decide.Permit {
				// Permit 0 is in both sets: it must stay covered throughout.
				oldAfterNew = true
			}
			mu.Unlock()
			decisions.Add(2)
		}
	}()

	start := time.Now()
	pctx, pcancel := context.WithTimeout(ctx, 120*time.Second)
	defer pcancel()
	err = central.SendPaced(pctx, func(m central.Message) error {
		done, result := cen.Track(m.Topic, 1, false, m.Payload)
		<-done
		return result()
	}, states, ms, 2, 4)
	took := time.Since(start)
	// The lane goes on until it has decided on the new data once.
	for i := 0; i < 200; i++ {
		mu.Lock()
		seen := sawNew
		mu.Unlock()
		if seen {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	<-lanes
	if err != nil {
		t.Fatalf("snapshot of %d permits: %v", n, err)
	}
	seq, _ := store.Seq()
	var counts permit.Counts
	store.View(func(v *permit.View) error { counts = v.Counts(); return nil })
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	p99, worst := lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("snapshot of %d permits (%d chunks) through Mosquitto applied in %v; %d decisions meanwhile, p99 %v, max %v (two decisions each)",
		n, len(ms), took.Round(time.Millisecond), decisions.Load(), p99, worst)
	if seq != 2 || counts.Permits != n+1 {
		t.Errorf("after the snapshot: seq %d, %d permits; want 2, %d", seq, counts.Permits, n+1)
	}
	if !sawNew || oldAfterNew {
		t.Errorf("decisions: saw the new permit %v, lost permit 0 after the swap %v", sawNew, oldAfterNew)
	}
	if decisions.Load() < 10 {
		t.Errorf("only %d decisions during the load", decisions.Load())
	}
}
