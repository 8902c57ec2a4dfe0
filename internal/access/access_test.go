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
