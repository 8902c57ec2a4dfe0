package track

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 7, 30, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// pass feeds a vehicle's reads at 25 fps from start, one per frame,
// and returns every event, ending with an Expire well after.
func pass(tr *Tracker, start int, plates []string, conf float32) []Event {
	var evs []Event
	for i, p := range plates {
		var rs []Read
		if p != "" {
			rs = []Read{{Plate: p, Country: "NO", Conf: conf, Frame: uint64(i), Y: 300 + float64(i)*8}}
		}
		evs = append(evs, tr.Add(at(start+40*i), rs)...)
	}
	return evs
}

func TestOneVehicleOneEvent(t *testing.T) {
	tr := New(Options{})
	// Eight frames; one misread and two frames without a read.
	evs := pass(tr, 0, []string{"AB12345", "AB12345", "A812345", "", "AB12345", "AB12345", "", "AB12345"}, 0.8)
	evs = append(evs, tr.Expire(at(5000))...)
	var early, final []Event
	for _, e := range evs {
		if e.Kind == Early {
			early = append(early, e)
		} else {
			final = append(final, e)
		}
	}
	if len(early) != 0 {
		t.Errorf("reads of 0.8 gave early events %+v; the threshold is 0.9", early)
	}
	if len(final) != 1 {
		t.Fatalf("final events = %+v, want one", final)
	}
	f := final[0]
	if f.Plate != "AB12345" || !slices.Equal(f.RunnersUp, []string{"A812345"}) || len(f.Frames) != 6 || f.Direction != 1 || !f.First.Equal(at(0)) || !f.Last.Equal(at(280)) {
		t.Errorf("final = %+v", f)
	}
}

func TestEarlyEvent(t *testing.T) {
	tr := New(Options{})
	evs := pass(tr, 0, []string{"EL43210", "EL43210", "EL43210"}, 0.97)
	if len(evs) != 1 || evs[0].Kind != Early || evs[0].Plate != "EL43210" || !evs[0].Last.Equal(at(0)) {
		t.Fatalf("events = %+v, want one early event on the first frame", evs)
	}
	evs = tr.Expire(at(5000))
	if len(evs) != 1 || evs[0].Kind != Final || evs[0].TrackID != 1 {
		t.Errorf("final = %+v", evs)
	}
}

func TestNoReadsNoEvents(t *testing.T) {
	tr := New(Options{})
	evs := pass(tr, 0, []string{"", "", "", ""}, 0.9)
	evs = append(evs, tr.Expire(at(10000))...)
	if len(evs) != 0 {
		t.Errorf("events without reads: %+v", evs)
	}
}

func TestTwoVehiclesAndDedup(t *testing.T) {
	tr := New(Options{Dedup: 30 * time.Second})
	evs := pass(tr, 0, []string{"AB12345", "AB12345"}, 0.95)
	evs = append(evs, pass(tr, 3000, []string{"CD54321", "CD54321"}, 0.95)...)
	// The first car again 10 s later: suppressed. Again after a minute:
	// reported.
	evs = append(evs, pass(tr, 13000, []string{"AB12345", "AB12345"}, 0.95)...)
	evs = append(evs, pass(tr, 80000, []string{"AB12345", "AB12345"}, 0.95)...)
	evs = append(evs, tr.Expire(at(200000))...)
	var got []string
	for _, e := range evs {
		s := e.Kind.String() + ":" + e.Plate
		if e.Suppressed {
			s += ":suppressed"
		}
		got = append(got, s)
	}
	want := []string{
		"early:AB12345", "final:AB12345", "early:CD54321", "final:CD54321",
		"early:AB12345:suppressed", "final:AB12345:suppressed", "early:AB12345", "final:AB12345",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
}
