package access_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"anprd/internal/access"
	"anprd/internal/config"
	"anprd/internal/decide"
	"anprd/internal/permit"
	"anprd/internal/permit/permittest"
	"anprd/internal/presence"
)

// TestPolicyKeysAreClasses: the config's policy keys are decide's
// classifications, so an override can name every one and nothing else.
func TestPolicyKeysAreClasses(t *testing.T) {
	var keys []string
	for f := range reflect.TypeFor[config.LanePolicy]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		keys = append(keys, name)
	}
	var classes []string
	for _, c := range decide.Classes {
		classes = append(classes, string(c))
	}
	slices.Sort(keys)
	slices.Sort(classes)
	if !slices.Equal(keys, classes) {
		t.Errorf("config.LanePolicy keys %v\n  decide.Classes %v", keys, classes)
	}
}

func TestLanesFromConfig(t *testing.T) {
	c, err := config.Parse([]byte(`version: 1
site: {id: sentrum, device: box-1, timezone: Europe/Stockholm}
mqtt: {broker: tcp://127.0.0.1:1883}
access: {anti_passback: hard, max_stay: 2d, min_confidence: 0.6, near_match: false, near_match_confidence: 0.9}
lanes:
  - {id: in-1, direction: entry, camera: {source: /dev/video0}, gate: {open: 1, safety_loop: 2}, zone: P2,
     policy: {unregistered: open_charge}}
  - {id: out-1, direction: exit, camera: {source: /dev/video1}, gate: {open: 3, safety_loop: 4}}
  - {id: ff-in, direction: entry, mode: free-flow, camera: {source: /dev/video2}}
  - {id: ff-out, direction: exit, mode: free-flow, camera: {source: /dev/video3}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	lanes, err := access.Lanes(c)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []decide.LaneKind{decide.Entrance, decide.Exit, decide.FreeFlowEntrance, decide.FreeFlowExit}
	for i, l := range lanes {
		if l.Kind != kinds[i] || l.Facility != "sentrum" || l.Location.String() != "Europe/Stockholm" ||
			l.AntiPassback != decide.PassbackHard || l.MaxStay != 48*time.Hour || l.MinConfidence != 0.6 ||
			l.Fuzzy || l.FuzzyMinConfidence != 0.9 {
			t.Errorf("lanes[%d] = %+v", i, l)
		}
	}
	if lanes[0].Zone != "P2" || lanes[0].Policy[decide.Unregistered] != decide.OpenCharge || lanes[0].Policy[decide.PermitInUse] != decide.Deny {
		t.Errorf("lane in-1: zone %q policy %v", lanes[0].Zone, lanes[0].Policy)
	}
	if lanes[1].Policy[decide.Unregistered] != decide.OpenCharge || lanes[1].Policy[decide.Permit] != decide.Open {
		t.Errorf("exit defaults: %v", lanes[1].Policy)
	}
	// The example config must give working lanes too.
	ex, err := config.Load("../../configs/anprd.example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := access.Lanes(ex); err != nil {
		t.Fatal(err)
	}
}

// TestPassEntryExit: an entry records presence, a second car of the same
// permit is in use, the exit closes the session and frees the permit.
func TestPassEntryExit(t *testing.T) {
	store, db := permittest.Store(t,
		permit.Change{Op: permit.Put, Facility: &permit.Facility{ID: "f1"}},
		permit.Change{Op: permit.Put, Product: &permit.Product{ID: "m", Facility: "f1"}},
		permit.Change{Op: permit.Put, Permit: &permit.Permit{ID: "P1", Tenant: "t", Product: "m", Status: permit.Active,
			ValidFrom: permit.Date(2026, 1, 1), Plates: []string{"AB12345", "CD12345"}}})
	pres, err := presence.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	oslo, _ := time.LoadLocation("Europe/Oslo")
	mk := func(id string, k decide.LaneKind) decide.Lane {
		return decide.Lane{ID: id, Kind: k, Facility: "f1", Location: oslo, Policy: decide.DefaultPolicy(k),
			AntiPassback: decide.PassbackSoft, MaxStay: 24 * time.Hour, MinConfidence: 0.5}
	}
	desk, err := access.New(store, pres, []decide.Lane{mk("in", decide.Entrance), mk("out", decide.Exit)})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 4, 15, 8, 0, 0, 0, oslo)
	pass := func(lane, p string, at time.Time) decide.Decision {
		t.Helper()
		d, err := desk.Pass(lane, decide.Read{Plate: p, Conf: 0.9, Time: at})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := pass("in", "AB12345", t0); d.Class != decide.Permit || d.Action != decide.Open {
		t.Fatalf("first car: %+v", d)
	}
	if d := pass("in", "CD12345", t0.Add(time.Minute)); d.Class != decide.PermitInUse || d.Action != decide.Deny {
		t.Fatalf("second car: %+v", d)
	}
	if d, _ := desk.Peek("in", decide.Read{Plate: "CD12345", Conf: 0.9, Time: t0}); d.Class != decide.PermitInUse {
		t.Errorf("Peek: %+v", d)
	}
	d := pass("out", "AB12345", t0.Add(3*time.Hour))
	if d.Class != decide.Permit || d.Session == nil || !d.Session.Entered.Equal(t0) || d.Session.EntryLane != "in" {
		t.Fatalf("exit: %+v %+v", d, d.Session)
	}
	if d := pass("in", "CD12345", t0.Add(4*time.Hour)); d.Class != decide.Permit {
		t.Fatalf("second car after the first left: %+v", d)
	}
	if _, err := desk.Pass("nope", decide.Read{}); err == nil {
		t.Error("unknown lane accepted")
	}
	// Expire frees the permit of a car whose exit was missed.
	gone, err := desk.Expire(t0.Add(4*time.Hour+25*time.Hour), 24*time.Hour)
	if err != nil || len(gone) != 1 || gone[0].Plate != "CD12345" {
		t.Errorf("Expire = %v, %v", gone, err)
	}
}

// TestReserveRelease: a reservation holds the permit's place while the
// car is at the barrier, and releasing it (the car backed out) gives the
// place back and puts presence as it was; a release after presence moved
// on changes nothing.
func TestReserveRelease(t *testing.T) {
	store, db := permittest.Store(t,
		permit.Change{Op: permit.Put, Facility: &permit.Facility{ID: "f1"}},
		permit.Change{Op: permit.Put, Product: &permit.Product{ID: "m", Facility: "f1"}},
		permit.Change{Op: permit.Put, Permit: &permit.Permit{ID: "P1", Tenant: "t", Product: "m", Status: permit.Active,
			ValidFrom: permit.Date(2026, 1, 1), Plates: []string{"AB12345", "CD12345"}}})
	pres, err := presence.Open(db.DB)
	if err != nil {
		t.Fatal(err)
	}
	oslo, _ := time.LoadLocation("Europe/Oslo")
	mk := func(id string, k decide.LaneKind) decide.Lane {
		return decide.Lane{ID: id, Kind: k, Facility: "f1", Location: oslo, Policy: decide.DefaultPolicy(k),
			AntiPassback: decide.PassbackSoft, MaxStay: 24 * time.Hour, MinConfidence: 0.5}
	}
	desk, err := access.New(store, pres, []decide.Lane{mk("in-1", decide.Entrance), mk("in-2", decide.Entrance), mk("out", decide.Exit)})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 4, 15, 8, 0, 0, 0, oslo)
	read := func(p string, at time.Time) decide.Read { return decide.Read{Plate: p, Conf: 0.9, Time: at} }
	reserve := func(lane, p string, at time.Time) *access.Reservation {
		t.Helper()
		r, err := desk.Reserve(lane, read(p, at))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	inside := func(p string) *presence.Vehicle {
		t.Helper()
		var v *presence.Vehicle
		if err := pres.View(func(tx *presence.Tx) (err error) { v, err = tx.Inside("f1", p); return err }); err != nil {
			t.Fatal(err)
		}
		return v
	}
	release := func(r *access.Reservation, want bool) {
		t.Helper()
		if got, err := desk.Release(r); err != nil || got != want {
			t.Fatalf("Release = %v, %v; want %v", got, err, want)
		}
	}

	// Two lanes, one permit: the place is taken at the decision.
	a := reserve("in-1", "AB12345", t0)
	if a.Decision.Class != decide.Permit || !a.Changed() {
		t.Fatalf("first car: %+v", a.Decision)
	}
	if b := reserve("in-2", "CD12345", t0.Add(time.Second)); b.Decision.Class != decide.PermitInUse || b.Changed() {
		t.Fatalf("second car while the first is at the barrier: %+v", b.Decision)
	}
	release(a, true) // the first car backed out
	if v := inside("AB12345"); v != nil {
		t.Fatalf("released entry still inside: %+v", v)
	}
	b := reserve("in-2", "CD12345", t0.Add(2*time.Second))
	if b.Decision.Class != decide.Permit {
		t.Fatalf("second car after the first backed out: %+v", b.Decision)
	}

	// A car already inside comes in again (soft anti-passback) and backs
	// out: its earlier record is put back.
	again := reserve("in-1", "CD12345", t0.Add(time.Hour))
	if v := inside("CD12345"); !v.Entered.Equal(t0.Add(time.Hour)) {
		t.Fatalf("re-entry not recorded: %+v", v)
	}
	release(again, true)
	if v := inside("CD12345"); v == nil || !v.Entered.Equal(t0.Add(2*time.Second)) || v.Lane != "in-2" {
		t.Fatalf("earlier record not restored: %+v", v)
	}

	// An exit that does not go through puts the car back inside.
	out := reserve("out", "CD12345", t0.Add(2*time.Hour))
	if out.Decision.Session == nil || inside("CD12345") != nil {
		t.Fatalf("exit: %+v", out.Decision)
	}
	release(out, true)
	if v := inside("CD12345"); v == nil || !v.Entered.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("exit not undone: %+v", v)
	}

	// Presence moved on between the decision and the release: the newer
	// record stands.
	stale := reserve("out", "CD12345", t0.Add(3*time.Hour))
	newer := reserve("in-1", "CD12345", t0.Add(3*time.Hour+time.Minute))
	release(stale, false)
	if v := inside("CD12345"); v == nil || !v.Entered.Equal(t0.Add(3*time.Hour+time.Minute)) {
		t.Fatalf("a stale release changed presence: %+v", v)
	}
	release(newer, true)
	if v := inside("CD12345"); v != nil {
		t.Fatalf("after releasing the newer entry: %+v", v)
	}

	// A refusal changes nothing, so there is nothing to release.
	deny := reserve("in-1", "ZZ99999", t0.Add(4*time.Hour))
	if deny.Decision.Action != decide.Deny || deny.Changed() {
		t.Fatalf("unregistered: %+v", deny.Decision)
	}
	release(deny, false)
}

// TestThrough: a vehicle that went through whatever the policy said (a
// tailgater, one let in by hand) is classified and recorded inside; the
// action still says what the policy would have done.
func TestThrough(t *testing.T) {
	store, db := permittest.Store(t,
		permit.Change{Op: permit.Put, Facility: &permit.Facility{ID: "f1"}},
		permit.Change{Op: permit.Put, Product: &permit.Product{ID: "m", Facility: "f1"}},
		permit.Change{Op: permit.Put, Permit: &permit.Permit{ID: "P1", Tenant: "t", Product: "m", Status: permit.Active,
			ValidFrom: permit.Date(2026, 1, 1), Plates: []string{"AB12345"}}})
	pres, _ := presence.Open(db.DB)
	oslo, _ := time.LoadLocation("Europe/Oslo")
	l := decide.Lane{ID: "in", Kind: decide.Entrance, Facility: "f1", Location: oslo, Policy: decide.DefaultPolicy(decide.Entrance),
		AntiPassback: decide.PassbackSoft, MinConfidence: 0.5}
	desk, _ := access.New(store, pres, []decide.Lane{l})
	t0 := time.Date(2026, 4, 15, 8, 0, 0, 0, oslo)
	for _, tt := range []struct {
		plate   string
		through bool
		class   decide.Class
		inside  bool
	}{
		{"ZZ99999", false, decide.Unregistered, false},
		{"ZZ99998", true, decide.Unregistered, true},
		{"AB12345", true, decide.Permit, true},
		{"", true, decide.Unreadable, false},
	} {
		res, err := desk.Reserve("in", decide.Read{Plate: tt.plate, Conf: 0.9, Time: t0, Through: tt.through})
		if err != nil {
			t.Fatal(err)
		}
		if res.Decision.Class != tt.class || res.Changed() != tt.inside {
			t.Errorf("%q through=%v: %s, changed %v", tt.plate, tt.through, res.Decision.Class, res.Changed())
		}
		if tt.class == decide.Unregistered && res.Decision.Action != decide.Deny {
			t.Errorf("%q: action %s, want the policy's deny", tt.plate, res.Decision.Action)
		}
	}
	vs, _ := pres.List("f1")
	got := map[string]bool{} // plate -> counted
	for _, v := range vs {
		got[v.Plate] = !v.NotCounted
	}
	if len(got) != 2 || !got["AB12345"] || got["ZZ99998"] {
		t.Errorf("inside (plate: counted): %v", got)
	}
}
