// Package track turns per-frame plate reads into one read event per
// vehicle: it groups the reads of one plate over frames, votes on the
// text, reports early as soon as the votes are confident (the barrier
// waits on that) and finally when the vehicle has gone, and does not
// report the same plate twice within a window. It is pure Go and knows
// nothing about cameras or images.
package track

import (
	"sort"
	"time"

	"anprd/internal/levenshtein"
	"anprd/internal/plate"
)

// Read is one plate read in one frame.
type Read struct {
	Plate   string
	Country plate.Country
	Conf    float32
	Frame   uint64 // frame sequence number
	Time    time.Time
	Y       float64 // vertical centre of the plate in the frame, for direction
}

// Kind says which report of a vehicle an Event is.
type Kind int

const (
	Early Kind = iota // confident enough to act on; the vehicle is still in view
	Final             // the vehicle has left the view
)

func (k Kind) String() string {
	if k == Early {
		return "early"
	}
	return "final"
}

// Event is the tracker's verdict on one vehicle.
type Event struct {
	Kind       Kind
	Plate      string
	Country    plate.Country
	Conf       float32  // share of the vote the plate won, times its mean read confidence
	RunnersUp  []string // other readings, best first
	Frames     []uint64 // the frames it was read in
	First      time.Time
	Last       time.Time
	Direction  int // +1 moving down the frame (towards the camera, usually), -1 up, 0 unknown
	TrackID    uint64
	Suppressed bool // a repeat within the dedup window: recorded, not to be acted on
}

// Options tune the tracker.
type Options struct {
	// Gap: a track not read for this long is over. Default 1.5 s.
	Gap time.Duration
	// EarlyConf is the vote confidence at which an early event goes out.
	// Default 0.9.
	EarlyConf float32
	// EarlyReads is the least number of reads for an early event, unless
	// one read alone is at least EarlyConf. Default 2.
	EarlyReads int
	// Dedup: a plate finalised less than this long ago is not reported
	// again (it is marked Suppressed). Default 30 s.
	Dedup time.Duration
}

// Tracker is not safe for concurrent use; one lane's loop owns it.
type Tracker struct {
	o      Options
	tracks []*trk
	recent map[string]time.Time // plate -> last final
	nextID uint64
}

type trk struct {
	id    uint64
	reads []Read
	early bool
}

// New returns a tracker.
func New(o Options) *Tracker {
	if o.Gap == 0 {
		o.Gap = 1500 * time.Millisecond
	}
	if o.EarlyConf == 0 {
		o.EarlyConf = 0.9
	}
	if o.EarlyReads == 0 {
		o.EarlyReads = 2
	}
	if o.Dedup == 0 {
		o.Dedup = 30 * time.Second
	}
	return &Tracker{o: o, recent: map[string]time.Time{}}
}

// Add feeds the reads of one frame taken at now and returns the events
// they cause: early events for tracks that became confident, and final
// events for tracks that ended before now.
func (t *Tracker) Add(now time.Time, reads []Read) []Event {
	evs := t.Expire(now)
	for _, r := range reads {
		r.Time = now
		tr := t.match(r)
		if tr == nil {
			t.nextID++
			tr = &trk{id: t.nextID}
			t.tracks = append(t.tracks, tr)
		}
		tr.reads = append(tr.reads, r)
	}
	for _, tr := range t.tracks {
		if tr.early {
			continue
		}
		ev := t.vote(tr, Early)
		if ev.Conf >= t.o.EarlyConf && (len(tr.reads) >= t.o.EarlyReads || tr.reads[0].Conf >= t.o.EarlyConf) {
			tr.early = true
			t.mark(&ev, false)
			evs = append(evs, ev)
		}
	}
	return evs
}

// Active reports whether a vehicle is being tracked.
func (t *Tracker) Active() bool { return len(t.tracks) > 0 }

// Expire ends the tracks not read since now-Gap, returning their final
// events. Call it when frames stop coming, so vehicles still get a final.
func (t *Tracker) Expire(now time.Time) []Event {
	var evs []Event
	kept := t.tracks[:0]
	for _, tr := range t.tracks {
		if now.Sub(tr.reads[len(tr.reads)-1].Time) < t.o.Gap {
			kept = append(kept, tr)
			continue
		}
		ev := t.vote(tr, Final)
		t.mark(&ev, true)
		evs = append(evs, ev)
	}
	clear(t.tracks[len(kept):])
	t.tracks = kept
	for p, at := range t.recent {
		if now.Sub(at) > t.o.Dedup {
			delete(t.recent, p)
		}
	}
	return evs
}

// mark sets Suppressed for a plate first seen within the dedup window
// of its last final and, for finals, starts the window at the plate's
// last read.
func (t *Tracker) mark(ev *Event, final bool) {
	if at, ok := t.recent[ev.Plate]; ok && ev.First.Sub(at) < t.o.Dedup {
		ev.Suppressed = true
	}
	if final {
		t.recent[ev.Plate] = ev.Last
	}
}

// match finds the open track a read belongs to: the same plate, or one
// within two character edits (a misread in one frame).
func (t *Tracker) match(r Read) *trk {
	var best *trk
	bestD := 3
	for _, tr := range t.tracks {
		for _, x := range tr.reads {
			if d := levenshtein.Distance(x.Plate, r.Plate); d < bestD {
				best, bestD = tr, d
			}
		}
	}
	if best != nil && bestD > 0 && len(r.Plate) < 4 {
		return nil
	}
	return best
}

// vote picks the plate text with the most confidence summed over the
// track's reads.
func (t *Tracker) vote(tr *trk, k Kind) Event {
	score := map[string]float32{}
	country := map[string]plate.Country{}
	var total float32
	for _, r := range tr.reads {
		score[r.Plate] += r.Conf
		country[r.Plate] = r.Country
		total += r.Conf
	}
	texts := make([]string, 0, len(score))
	for p := range score {
		texts = append(texts, p)
	}
	sort.Slice(texts, func(i, j int) bool {
		if score[texts[i]] != score[texts[j]] {
			return score[texts[i]] > score[texts[j]]
		}
		return texts[i] < texts[j]
	})
	win := texts[0]
	n := 0
	for _, r := range tr.reads {
		if r.Plate == win {
			n++
		}
	}
	ev := Event{
		Kind:      k,
		Plate:     win,
		Country:   country[win],
		Conf:      score[win] / total * (score[win] / float32(n)),
		RunnersUp: texts[1:],
		First:     tr.reads[0].Time,
		Last:      tr.reads[len(tr.reads)-1].Time,
		TrackID:   tr.id,
	}
	for _, r := range tr.reads {
		ev.Frames = append(ev.Frames, r.Frame)
	}
	if len(tr.reads) >= 3 {
		dy := tr.reads[len(tr.reads)-1].Y - tr.reads[0].Y
		switch {
		case dy > 10:
			ev.Direction = 1
		case dy < -10:
			ev.Direction = -1
		}
	}
	return ev
}
