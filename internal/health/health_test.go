package health

import (
	"reflect"
	"testing"
	"time"
)

func TestRegistryReadiness(t *testing.T) {
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	r := NewRegistry(func() time.Time { return now })
	db := r.Register("database")
	st := r.Register("status")
	if ok, waiting := r.Ready(); ok || !reflect.DeepEqual(waiting, []string{"database", "status"}) {
		t.Fatalf("fresh registry: ready=%v waiting=%v", ok, waiting)
	}
	db.Set(OK, true, "schema 1")
	if ok, waiting := r.Ready(); ok || !reflect.DeepEqual(waiting, []string{"status"}) {
		t.Fatalf("one ready: ready=%v waiting=%v", ok, waiting)
	}
	st.Set(OK, true, "")
	if ok, _ := r.Ready(); !ok {
		t.Fatal("all ready but Ready() is false")
	}
	now = now.Add(time.Minute)
	db.Set(Failed, false, "disk full")
	snap := r.Snapshot()
	if snap[0].Name != "database" || snap[0].State != Failed || !snap[0].Since.Equal(now) || snap[0].Detail != "disk full" {
		t.Errorf("snapshot[0] = %+v", snap[0])
	}
	if ok, _ := r.Ready(); ok {
		t.Error("failed component still counted ready")
	}
	// A state that does not change keeps its Since.
	now = now.Add(time.Minute)
	db.Set(Failed, false, "disk still full")
	if got := r.Snapshot()[0].Since; !got.Equal(now.Add(-time.Minute)) {
		t.Errorf("Since moved without a state change: %v", got)
	}
	if r.Register("database"); len(r.Snapshot()) != 2 {
		t.Error("registering a name twice made a second entry")
	}
}

func TestHeartbeat(t *testing.T) {
	var h Heartbeat
	t0 := time.Date(2026, 3, 29, 1, 59, 0, 0, time.UTC)
	if _, ok := h.Age(t0); ok {
		t.Fatal("age before first beat")
	}
	h.Beat(t0)
	if age, ok := h.Age(t0.Add(3 * time.Second)); !ok || age != 3*time.Second {
		t.Errorf("age = %v, %v", age, ok)
	}
}
