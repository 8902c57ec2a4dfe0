// Package watch runs one lane's camera side: it takes the newest frame
// from the source, decides whether it is worth reading (something moved in
// the region of interest, a vehicle is being tracked, a trigger such as the
// arming loop fired, or the idle rate is due), reads it, and feeds the
// tracker, handing its read events to the lane. It does not decide access
// or drive the barrier.
package watch

import (
	"bytes"
	"context"
	"image"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"anprd/camera/ocr"
	"anprd/camera/reader"
	"anprd/camera/track"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"gocv.io/x/gocv"
)

// Options tune a watcher.
type Options struct {
	Lane string
	// ROI is the region plates are searched in, a polygon in frame
	// pixels; empty means the whole frame.
	ROI []image.Point
	// IdleEvery is how often a still scene is read anyway; default 10 s.
	// Arrivals are caught by motion (and at barriers by the arming loop);
	// this is the safety net, and each read of a 720p frame costs 0.04
	// to 0.13 s of a core: about 2% of a core at one read every 5 s.
	IdleEvery time.Duration
	// Motion is the mean absolute change (0-255) of the downscaled grey
	// frame that counts as movement; default 2.
	Motion float64
	// Evidence keeps the plate crop and scene of each final event; nil
	// keeps none.
	Evidence Saver
}

// Event is a read event with its evidence images (paths from the Saver),
// which final events carry.
type Event struct {
	track.Event
	PlateImage string
	SceneImage string
}

// Events receives a lane's read events. It must not block for long: the
// watcher reads the next frame only after it returns.
type Events func(Event)

// Frames is where a watcher takes its frames; *source.Source is the
// real one (anprctl bench lane replays a clip from memory).
type Frames interface {
	// NextIf waits for a frame newer than after and shows it to look,
	// which says whether to copy it into dst (nil: copy every frame); see
	// source.Source.NextIf.
	NextIf(ctx context.Context, after uint64, look func(frame gocv.Mat, at time.Time) bool, dst *gocv.Mat) (seq uint64, at time.Time, copied bool, err error)
}

// Saver keeps evidence images; package evidence is the real one.
type Saver interface {
	Save(at time.Time, lane string, id uint64, plate, scene []byte) (platePath, scenePath string, err error)
}

// shot is the best frame of a plate so far, already encoded.
type shot struct {
	conf         float32
	plate, scene []byte
}

// Watcher is one lane's read loop.
type Watcher struct {
	o       Options
	src     Frames
	rd      *reader.Reader
	tr      *track.Tracker
	events  Events
	log     zerolog.Logger
	m       *Metrics
	skipped prometheus.Counter  // this lane's child of m.skipped
	readDur prometheus.Observer // this lane's child of m.readSeconds
	trigger atomic.Bool

	mu   sync.Mutex
	last track.Event // for the status page

	best map[string]*shot // plate -> best frame of its current track
}

// New returns a watcher; Run starts it.
func New(o Options, src Frames, rd *reader.Reader, tr *track.Tracker, events Events, m *Metrics, log zerolog.Logger) *Watcher {
	if o.IdleEvery <= 0 {
		o.IdleEvery = 10 * time.Second
	}
	if o.Motion <= 0 {
		o.Motion = 2
	}
	return &Watcher{o: o, src: src, rd: rd, tr: tr, events: events, m: m, log: log,
		skipped: m.skipped.WithLabelValues(o.Lane), readDur: m.readSeconds.WithLabelValues(o.Lane)}
}

// Trigger asks for the next frame to be read whatever the scene does
// (the gate's arming loop went occupied).
func (w *Watcher) Trigger() { w.trigger.Store(true) }

// Last is the last read event, for the status page.
func (w *Watcher) Last() track.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// Run reads frames until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	frame := gocv.NewMat()
	defer frame.Close()
	mid := gocv.NewMat()
	defer mid.Close()
	small := gocv.NewMat()
	defer small.Close()
	prev := gocv.NewMat()
	defer prev.Close()
	diff := gocv.NewMat()
	defer diff.Close()
	var seq uint64
	var lastRead time.Time
	// A frame is only copied out of the source when it is to be read: the
	// motion check looks at it in place. look sets roi for the frame.
	var roi image.Rectangle
	look := func(f gocv.Mat, at time.Time) bool {
		full := image.Rect(0, 0, f.Cols(), f.Rows())
		roi = bounds(w.o.ROI).Intersect(full)
		if len(w.o.ROI) < 3 || roi.Dx() < 32 || roi.Dy() < 32 {
			roi = full
		}
		moved := w.motion(f, roi, &mid, &small, &prev, &diff)
		due := at.Sub(lastRead) >= w.o.IdleEvery
		return moved || w.tr.Active() || due || w.trigger.Swap(false)
	}
	for {
		// Frames may stop (a camera gone); tracks still end.
		nctx, cancel := context.WithTimeout(ctx, time.Second)
		next, at, read, err := w.src.NextIf(nctx, seq, look, &frame)
		cancel()
		if ctx.Err() != nil {
			w.emit(w.tr.Expire(time.Now().Add(time.Hour)))
			return nil
		}
		if err != nil {
			w.emit(w.tr.Expire(time.Now()))
			continue
		}
		seq = next
		if !read {
			w.skipped.Inc()
			w.emit(w.tr.Expire(at))
			continue
		}
		lastRead = at
		start := time.Now()
		reads, err := w.rd.ReadFrame(frame, roi)
		w.readDur.Observe(time.Since(start).Seconds())
		if err != nil {
			w.log.Warn().Err(err).Msg("frame not read")
			continue
		}
		reads = slices.DeleteFunc(reads, func(r reader.Read) bool {
			b := r.Quad.Bounds()
			return len(w.o.ROI) >= 3 && !inPolygon(w.o.ROI, image.Pt((b.Min.X+b.Max.X)/2, (b.Min.Y+b.Max.Y)/2))
		})
		w.keepBest(frame, reads)
		trs := make([]track.Read, len(reads))
		for i, r := range reads {
			b := r.Quad.Bounds()
			trs[i] = track.Read{Plate: r.Plate, Country: r.Country, Conf: r.Conf, Frame: seq, Y: float64(b.Min.Y+b.Max.Y) / 2}
		}
		w.emit(w.tr.Add(at, trs))
	}
}

// motion compares a small grey copy of the region with the previous one.
// The copy is made in two steps: a nearest-pixel sample to 320x180, then
// averaged down to 64x36, which still smooths sensor noise over 25
// samples a pixel. Averaging the whole 720p region at once cost 1.5% of a
// core at 25 frames a second, as much as all the rest of a still lane
// besides decoding.
func (w *Watcher) motion(frame gocv.Mat, roi image.Rectangle, mid, small, prev, diff *gocv.Mat) bool {
	region := frame.Region(roi)
	gocv.Resize(region, mid, image.Pt(320, 180), 0, 0, gocv.InterpolationNearestNeighbor)
	region.Close()
	gocv.Resize(*mid, small, image.Pt(64, 36), 0, 0, gocv.InterpolationArea)
	gocv.CvtColor(*small, small, gocv.ColorBGRToGray)
	moved := true
	if !prev.Empty() {
		gocv.AbsDiff(*small, *prev, diff)
		moved = diff.Mean().Val1 >= w.o.Motion
	}
	small.CopyTo(prev)
	return moved
}

// bounds is the rectangle around a polygon.
func bounds(poly []image.Point) image.Rectangle {
	if len(poly) == 0 {
		return image.Rectangle{}
	}
	r := image.Rectangle{Min: poly[0], Max: poly[0]}
	for _, p := range poly[1:] {
		r = r.Union(image.Rectangle{Min: p, Max: p.Add(image.Pt(1, 1))})
	}
	return r
}

// inPolygon is the even-odd rule: a ray from p crosses the polygon's
// edges an odd number of times when p is inside.
func inPolygon(poly []image.Point, p image.Point) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.Y > p.Y) != (b.Y > p.Y) &&
			float64(p.X) < float64(b.X-a.X)*float64(p.Y-a.Y)/float64(b.Y-a.Y)+float64(a.X) {
			in = !in
		}
	}
	return in
}

func (w *Watcher) emit(evs []track.Event) {
	for _, ev := range evs {
		w.m.events.WithLabelValues(w.o.Lane, ev.Kind.String()).Inc()
		out := Event{Event: ev}
		if ev.Kind == track.Final {
			w.m.latency.WithLabelValues(w.o.Lane).Observe(ev.Last.Sub(ev.First).Seconds())
			if s := w.best[ev.Plate]; s != nil && w.o.Evidence != nil {
				var err error
				out.PlateImage, out.SceneImage, err = w.o.Evidence.Save(ev.Last, w.o.Lane, ev.TrackID, s.plate, s.scene)
				if err != nil {
					// The read still counts; only its pictures are missing.
					w.log.Error().Err(err).Msg("evidence not saved")
				}
			}
			delete(w.best, ev.Plate)
			for _, p := range ev.RunnersUp {
				delete(w.best, p)
			}
		}
		w.mu.Lock()
		w.last = ev
		w.mu.Unlock()
		w.events(out)
	}
}

// maxShots bounds the frames kept for plates whose tracks have not ended.
const maxShots = 32

// keepBest encodes the plate crop and a scene 640 pixels wide for each
// read that beats the best so far of its plate.
func (w *Watcher) keepBest(frame gocv.Mat, reads []reader.Read) {
	if w.o.Evidence == nil {
		return
	}
	if w.best == nil {
		w.best = map[string]*shot{}
	}
	for _, r := range reads {
		if s := w.best[r.Plate]; s != nil && s.conf >= r.Conf {
			continue
		}
		if len(w.best) >= maxShots {
			clear(w.best) // tracks long gone without a final; start afresh
		}
		crop := ocr.Crop(frame, r.Quad.Grow(0.1, 0.3))
		pb, err1 := gocv.IMEncode(gocv.JPEGFileExt, crop)
		crop.Close()
		small := gocv.NewMat()
		h := frame.Rows() * 640 / max(1, frame.Cols())
		gocv.Resize(frame, &small, image.Pt(640, max(1, h)), 0, 0, gocv.InterpolationArea)
		sb, err2 := gocv.IMEncode(gocv.JPEGFileExt, small)
		small.Close()
		if err1 != nil || err2 != nil {
			w.log.Warn().Errs("errors", []error{err1, err2}).Msg("evidence image not encoded")
			continue
		}
		w.best[r.Plate] = &shot{conf: r.Conf, plate: bytes.Clone(pb.GetBytes()), scene: bytes.Clone(sb.GetBytes())}
		pb.Close()
		sb.Close()
	}
}
