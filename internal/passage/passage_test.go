package passage

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"anprd/internal/decide"
	"anprd/internal/presence"
)

func TestPresenceOf(t *testing.T) {
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	if p := PresenceOf("p1", decide.Decision{}); p != nil {
		t.Errorf("no change gave %+v", p)
	}
	v := &presence.Vehicle{Facility: "p1", Plate: "EL43210", Entered: now, Permit: "P1", Flags: []string{"near_match"}}
	p := PresenceOf("p1", decide.Decision{Enter: v, Leave: "EL43210"})
	if p == nil || p.Facility != "p1" || p.Leave != "EL43210" || p.Enter.Plate != "EL43210" || p.Enter.Permit != "P1" {
		t.Fatalf("PresenceOf = %+v", p)
	}
	v.Flags[0] = "changed"
	if p.Enter == v || p.Enter.Flags[0] != "near_match" {
		t.Error("PresenceOf shares the decision's vehicle")
	}
}

func TestIDText(t *testing.T) {
	var g Generator
	now := time.Date(2026, 11, 24, 10, 0, 0, 123e6, time.UTC)
	id := g.New(now)
	s := id.String()
	if len(s) != 26 {
		t.Fatalf("%q is not 26 characters", s)
	}
	back, err := ParseID(strings.ToLower(s))
	if err != nil || back != id {
		t.Fatalf("ParseID(%q) = %v, %v; want %v", s, back, err, id)
	}
	if !id.Time().Equal(now) {
		t.Errorf("Time() = %v, want %v", id.Time(), now)
	}
	for _, bad := range []string{"", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01ARZ3NDEKTSV4RRFFQ69G5FAU", "01ARZ3NDEKTSV4RRFFQ69G5FA"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

// TestIDOrder: IDs sort as they were made, within one millisecond and when
// the clock steps back.
func TestIDOrder(t *testing.T) {
	var g Generator
	base := time.Date(2026, 3, 29, 1, 59, 59, 0, time.UTC)
	var ids []string
	for i := range 2000 {
		at := base.Add(time.Duration(i/100) * time.Millisecond)
		if i == 1500 {
			base = base.Add(-time.Second) // NTP steps the clock back
		}
		ids = append(ids, g.New(at).String())
	}
	if !slices.IsSorted(ids) {
		t.Error("ids are not in the order they were made")
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Error("duplicate ids")
	}
}

func valid() Passage {
	var g Generator
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	d, s := FromDecision(decide.Decision{Class: decide.Class("permit"), Reason: decide.Reason("permit_valid"), Action: decide.Action("open"), Plate: "EL43210",
		Session: &decide.Session{Entered: now.Add(-time.Hour), Exited: now}})
	return Passage{ID: g.New(now), Site: "p1", Device: "box-1", Lane: "out-1", Direction: "exit", Kind: Vehicle, Time: now,
		Read: &Read{Plate: "EL43210", Conf: 0.97}, Decision: d, Session: s,
		Gate: Gate{Action: Opened, Passed: true}, Timings: Timings{Trigger: now.Add(-200 * time.Millisecond), Passed: now}}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Passage)
		want   string // "" for valid
	}{
		{"valid", func(*Passage) {}, ""},
		{"no id", func(p *Passage) { p.ID = ID{} }, "id: missing"},
		{"direction", func(p *Passage) { p.Direction = "in" }, "direction"},
		{"no decision", func(p *Passage) { p.Decision = nil }, "needs one"},
		{"manual without who", func(p *Passage) { p.Kind = Manual }, "who opened"},
		{"manual", func(p *Passage) { p.Kind, p.Manual = Manual, &ManualOpen{Source: "button"} }, ""},
		{"gate action", func(p *Passage) { p.Gate.Action = "" }, "gate.action"},
		{"session backwards", func(p *Passage) { p.Session.Exited = p.Session.Entered.Add(-time.Minute) }, "exit before entry"},
		{"kind", func(p *Passage) { p.Kind = "car" }, "kind"},
		{"presence leave", func(p *Passage) { p.Presence = &Presence{Facility: "p1", Leave: "EL43210"} }, ""},
		{"presence empty", func(p *Passage) { p.Presence = &Presence{Facility: "p1"} }, "neither enter nor leave"},
		{"presence no facility", func(p *Passage) { p.Presence = &Presence{Leave: "EL43210"} }, "presence.facility"},
		{"presence other facility", func(p *Passage) {
			p.Presence = &Presence{Facility: "p1", Enter: &presence.Vehicle{Facility: "p2", Plate: "EL43210"}}
		}, "presence.enter.facility"},
	}
	for _, tt := range tests {
		p := valid()
		tt.change(&p)
		err := p.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one with %q", tt.name, err, tt.want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	p := valid()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{`"command"`, `"manual"`, `"evidence"`} {
		if strings.Contains(string(b), absent) {
			t.Errorf("%s written though unset: %s", absent, b)
		}
	}
	var back Passage
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b) != string(b2) {
		t.Errorf("round trip changed the passage:\n%s\n%s", b, b2)
	}
}

func FuzzParseID(f *testing.F) {
	f.Add("01ARZ3NDEKTSV4RRFFQ69G5FAV")
	f.Add("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		if !strings.EqualFold(id.String(), s) {
			t.Errorf("ParseID(%q).String() = %q", s, id.String())
		}
	})
}
