package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/state"
	"anprd/sync/mqtt"
	"anprd/sync/mqtt/mqtttest"
	"anprd/sync/permitsync"
	"anprd/sync/protocol"

	"github.com/rs/zerolog"
)

// TestCentralCommands: keys gen makes a key pair; permits push delivers
// a CSV snapshot and a JSON delta to a box's permit sync through a real
// broker; passages tail counts unique ids and duplicates.
func TestCentralCommands(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"keys", "gen", "-out", filepath.Join(dir, "central")}, &out, &errb); code != 0 {
		t.Fatalf("keys gen: %d %s", code, errb.String())
	}
	if code := run([]string{"keys", "gen", "-out", filepath.Join(dir, "central")}, &out, &errb); code != 1 {
		t.Error("keys gen overwrote a private key")
	}
	pubPEM, _ := os.ReadFile(filepath.Join(dir, "central.pub"))
	pub, err := protocol.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}

	// The box.
	db, err := state.Open(t.TempDir(), state.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, _ := permit.Open(db.DB)
	topics := protocol.Topics{Prefix: "anpr/v1", Site: "p1", Device: "box-1"}
	edge, _ := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "box-1", Log: zerolog.Nop(), MinBackoff: 20 * time.Millisecond})
	s := permitsync.New(store, edge, permitsync.Options{Topics: topics, Key: pub, Log: zerolog.Nop()})
	edge.Subscribe("sync", 1, 64<<20, func(r mqtt.Received) { s.Handle(r.Topic, r.Payload) }, s.Filters()...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); edge.Run(ctx, nil) }()
	for !edge.Connected() {
		time.Sleep(5 * time.Millisecond)
	}

	csv := "kind,id,tenant,product,status,valid_from,plates,facility,max_vehicles\n" +
		"facility,p1,,,,,,,\nproduct,m,,,,,,p1,3\n" +
		"permit,a1,t1,m,active,2026-01-01,AB12345;CD12345,,\npermit,a2,t2,m,active,2026-01-01,EF12345,,\n"
	os.WriteFile(filepath.Join(dir, "permits.csv"), []byte(csv), 0o600)
	common := []string{"-broker", b.URL, "-site", "p1", "-key", filepath.Join(dir, "central.key")}
	out.Reset()
	args := append([]string{"permits", "push"}, common...)
	args = append(args, "-device", "box-1", "-seq", "5", "-chunk", "2", filepath.Join(dir, "permits.csv"))
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("permits push snapshot: %d %s", code, errb.String())
	}
	if seq, _ := store.Seq(); seq != 5 || !strings.Contains(out.String(), "4 records in 2 chunks applied by box-1 at seq 5") {
		t.Fatalf("after the snapshot: seq %d; %s", seq, out.String())
	}
	os.WriteFile(filepath.Join(dir, "delta.json"), []byte(`[{"op":"delete","permit":{"id":"a2"}}]`), 0o600)
	args = append([]string{"permits", "push"}, common...)
	args = append(args, "-mode", "delta", "-device", "box-1", "-seq", "6", filepath.Join(dir, "delta.json"))
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("permits push delta: %d %s", code, errb.String())
	}
	var n int
	store.View(func(v *permit.View) error { n = v.Counts().Permits; return nil })
	if seq, _ := store.Seq(); seq != 6 || n != 1 {
		t.Errorf("after the delta: seq %d, %d permits", seq, n)
	}

	// passages tail: three passages, one of them twice.
	tailOut := &syncBuffer{}
	tailDone := make(chan int, 1)
	go func() {
		tailDone <- run([]string{"passages", "tail", "-broker", b.URL, "-site", "p1", "-n", "3", "-session=false"}, tailOut, &errb)
	}()
	time.Sleep(300 * time.Millisecond) // subscribed
	for _, i := range []int{0, 1, 1, 2} {
		p := tailPassage(i)
		if err := edge.Send(topics.Passage(), 1, false, mustJSON(t, p)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case code := <-tailDone:
		if code != 0 || !strings.Contains(tailOut.String(), "3 unique, 1 duplicates, 0 undecodable") || !strings.Contains(tailOut.String(), "(duplicate)") {
			t.Errorf("tail: %d\n%s", code, tailOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("tail did not stop after 3 passages:\n%s", tailOut.String())
	}
}

func tailPassage(i int) passage.Passage {
	var id passage.ID
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	d, _ := passage.FromDecision(decide.Decision{Class: decide.Permit, Reason: decide.PermitValid, Action: decide.Open, Plate: "AB12345"})
	return passage.Passage{ID: id, Site: "p1", Device: "box-1", Lane: "in-1", Direction: "entry", Kind: passage.Vehicle,
		Time: time.Date(2026, 11, 24, 8, 0, i, 0, time.UTC), Read: &passage.Read{Plate: "AB12345", Conf: 0.9}, Decision: d,
		Gate: passage.Gate{Action: passage.Opened, Passed: true}}
}

func TestUsageOfCentralCommands(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{{"keys"}, {"permits", "push"}, {"permits", "push", "-site", "p1", "x.csv"}, {"passages", "tail"}, {"passages"}} {
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBenchUplink(t *testing.T) {
	mqtttest.Start(t, mqtttest.Options{}) // skips without mosquitto; the bench starts its own
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "uplink", "-passages", "300", "-singles", "10", "-json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	var res uplinkResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Arrived != 300 || res.Lost != 0 || res.AckPerSecond <= 0 {
		t.Errorf("result %+v, %v", res, err)
	}
}
