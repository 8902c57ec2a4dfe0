package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"anprd/camera/ocr"
	"anprd/camera/onnx"
	"anprd/camera/reader"
	"anprd/camera/track"
	"anprd/camera/watch"
	"anprd/gate"
	"anprd/gate/lane"
	"anprd/gate/lane/lanetest"
	"anprd/gate/sim"
	"anprd/internal/access"
	"anprd/internal/decide"
	"anprd/internal/evidence"
	"anprd/internal/passage"
	"anprd/internal/permit"
	"anprd/internal/plate"
	"anprd/internal/presence"
	"anprd/internal/state"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"gocv.io/x/gocv"
)

// laneStat is one step's percentiles, in milliseconds.
type laneStat struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	Max float64 `json:"max_ms"`
}

// laneRun is one timed run: its loop edge to first read and to open
// command, in milliseconds, the frames read in it and the load then.
type laneRun struct {
	EdgeToReadMs float64 `json:"edge_to_read_ms"`
	EdgeToOpenMs float64 `json:"edge_to_open_ms"`
	ReadConf     float32 `json:"read_conf"`
	FramesRead   int     `json:"frames_read"`
	LoadAvg1     string  `json:"loadavg_1m"`
}

// laneBenchResult is what `anprctl bench lane` prints.
type laneBenchResult struct {
	Clip          string   `json:"clip"`
	Frames        int      `json:"frames"`
	FPS           float64  `json:"fps"`
	Width         int      `json:"width"`
	Height        int      `json:"height"`
	EntryFrame    int      `json:"entry_frame"` // the arming loop's edge fires as this frame is shown
	Plate         string   `json:"plate"`
	MinPlateWidth int      `json:"min_plate_width"`
	ROI           [][2]int `json:"roi,omitempty"`
	Threads       int      `json:"threads"`
	Evidence      bool     `json:"evidence"` // evidence images encoded, as in the daemon
	Warmup        int      `json:"warmup_runs"`
	Runs          int      `json:"runs"`
	Opened        int      `json:"opened"` // runs in which the barrier opened for the car
	// Steps of each run's passage timings: edge_to_read, read_to_decision,
	// decision_to_open, edge_to_open.
	Steps          map[string]laneStat  `json:"steps"`
	PerRun         []laneRun            `json:"per_run"`
	FrameReadMs    float64              `json:"frame_read_mean_ms"` // the reader's mean time per frame read
	FramesRead     int                  `json:"frames_read"`
	Classes        map[decide.Class]int `json:"classes"`
	Hits           int                  `json:"hits"` // the simulated arm on a vehicle (must be 0)
	LoadAvgBefore  string               `json:"loadavg_before"`
	LoadAvgAfter   string               `json:"loadavg_after"`
	TargetP95Ms    float64              `json:"target_p95_ms"`
	TargetMet      bool                 `json:"target_met"`
	FailedRunNotes []string             `json:"failed_runs,omitempty"`
	Note           string               `json:"note"`
}

const laneBenchUsage = `Usage: anprctl bench lane [flags] [CLIP]

Replays CLIP (a video file or a folder of frames, e.g. written by
anprctl synth; default: a synthetic clip made for the run) through a
simulated lane: the real plate reader and tracker (camera/watch), the real
decision on a temporary database with a permit for the plate, the lane
orchestration and a simulated barrier. The arming loop's edge fires as the
car enters the frame; a simulated car drives through once the arm is up.
Prints p50 and p95 of each step of the passages' timings: loop edge ->
first read -> decision -> open command.
`

func runBenchLane(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl bench lane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf readerFlags
	rf.register(fs)
	runs := fs.Int("runs", 20, "timed runs")
	warmup := fs.Int("warmup", 1, "untimed runs first (the first inference of a session is slow)")
	text := fs.String("plate", "EL43210", "the clip's plate: the permit is made for it (and the synthetic clip shows it)")
	roiFlag := fs.String("roi", "", "the lane's region of interest, x,y,x,y,... (at least three points); default the whole frame")
	noEvidence := fs.Bool("no-evidence", false, "do not encode evidence images (the daemon does)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	verbose := fs.Bool("v", false, "log the lane and barrier at debug level to stderr")
	fs.Usage = func() {
		fmt.Fprint(stderr, laneBenchUsage)
		fs.PrintDefaults()
	}
	// A lane's detector is sized by its narrowest plate; 160 is a camera
	// framed so that plates are about 200 pixels wide (configs/anprd.example.yaml).
	fs.Lookup("min-plate-width").DefValue = "160"
	rf.minPlate = 160
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 || *runs < 1 || *warmup < 0 {
		fs.Usage()
		return 2
	}
	roi, err := parseROI(*roiFlag)
	if err != nil {
		fmt.Fprintf(stderr, "anprctl bench lane: -roi: %v\n", err)
		return 2
	}
	clip := fs.Arg(0)
	if clip == "" {
		tmp, err := os.MkdirTemp("", "anprctl-bench-lane-")
		if err != nil {
			fmt.Fprintf(stderr, "anprctl bench lane: %v\n", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		clip = filepath.Join(tmp, "car.mp4")
		if code := runSynth([]string{"-plate", *text, "-frames", "100", clip}, io.Discard, stderr); code != 0 {
			return code
		}
	}
	log := zerolog.Nop()
	if *verbose {
		log = zerolog.New(zerolog.ConsoleWriter{Out: stderr}).With().Timestamp().Logger()
	}
	res, err := benchLane(clip, plate.Normalize(*text), roi, rf, *runs, *warmup, !*noEvidence, log)
	if err != nil {
		fmt.Fprintf(stderr, "anprctl bench lane: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return 0
	}
	fmt.Fprintf(stdout, "clip       %s: %d frames %dx%d at %.0f fps, car enters at frame %d (plate %s)\n",
		res.Clip, res.Frames, res.Width, res.Height, res.FPS, res.EntryFrame, res.Plate)
	roiText := "whole frame"
	if len(res.ROI) > 0 {
		roiText = fmt.Sprint(res.ROI)
	}
	fmt.Fprintf(stdout, "lane       min_plate_width %d, roi %s, %d reader thread(s), evidence %v\n", res.MinPlateWidth, roiText, res.Threads, res.Evidence)
	fmt.Fprintf(stdout, "runs       %d timed (+%d warm-up); barrier opened in %d; frames read %d at %.1f ms mean; arm hits %d\n",
		res.Runs, res.Warmup, res.Opened, res.FramesRead, res.FrameReadMs, res.Hits)
	for _, s := range []string{"edge_to_read", "read_to_decision", "decision_to_open", "edge_to_open"} {
		st := res.Steps[s]
		fmt.Fprintf(stdout, "%-17s p50 %7.1f ms  p95 %7.1f ms  max %7.1f ms\n", s, st.P50, st.P95, st.Max)
	}
	verdict := "met"
	if !res.TargetMet {
		verdict = "NOT met"
	}
	fmt.Fprintf(stdout, "target     p95 edge_to_open <= %.0f ms: %s\n", res.TargetP95Ms, verdict)
	fmt.Fprintf(stdout, "load       before %s; after %s\n", res.LoadAvgBefore, res.LoadAvgAfter)
	for _, n := range res.FailedRunNotes {
		fmt.Fprintf(stdout, "failed     %s\n", n)
	}
	fmt.Fprintf(stdout, "note       %s\n", res.Note)
	if res.Opened < res.Runs {
		return 1
	}
	return 0
}

func parseROI(s string) ([]image.Point, error) {
	if s == "" {
		return nil, nil
	}
	f := strings.Split(s, ",")
	if len(f)%2 != 0 || len(f) < 6 {
		return nil, errors.New("want x,y pairs, at least three")
	}
	var out []image.Point
	for i := 0; i < len(f); i += 2 {
		x, err1 := strconv.Atoi(strings.TrimSpace(f[i]))
		y, err2 := strconv.Atoi(strings.TrimSpace(f[i+1]))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q is not x,y", f[i]+","+f[i+1])
		}
		out = append(out, image.Pt(x, y))
	}
	return out, nil
}

// clipReader opens a clip, a video file or a folder of frames, for
// reading frame by frame, as the daemon's camera source would decode it.
type clipReader struct {
	cap   *gocv.VideoCapture
	files []string
	i     int
	fps   float64
}

func openClip(path string) (*clipReader, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		var files []string
		for _, ext := range []string{"*.jpg", "*.jpeg", "*.png"} {
			m, _ := filepath.Glob(filepath.Join(path, ext))
			files = append(files, m...)
		}
		slices.Sort(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no frames", path)
		}
		return &clipReader{files: files, fps: 10}, nil
	}
	c, err := gocv.VideoCaptureFile(path)
	if err != nil {
		return nil, err
	}
	fps := c.Get(gocv.VideoCaptureFPS)
	if fps <= 0 || fps > 240 {
		fps = 25
	}
	return &clipReader{cap: c, fps: fps}, nil
}

// next decodes the next frame into m; false at the end.
func (c *clipReader) next(m *gocv.Mat) bool {
	if c.cap != nil {
		return c.cap.Read(m) && !m.Empty()
	}
	if c.i >= len(c.files) {
		return false
	}
	img := gocv.IMRead(c.files[c.i], gocv.IMReadColor)
	c.i++
	if img.Empty() {
		return false
	}
	img.CopyTo(m)
	img.Close()
	return true
}

func (c *clipReader) close() {
	if c.cap != nil {
		c.cap.Close()
	}
}

// survey decodes the clip once: its length and size, and the first frame
// that differs from the first (the car entering), measured as the watcher
// measures motion: the mean change of a 64x36 grey copy.
func survey(path string) (frames, w, h, entry int, fps float64, err error) {
	c, err := openClip(path)
	if err != nil {
		return 0, 0, 0, 0, 0, err
	}
	defer c.close()
	fps = c.fps
	m, small, first, diff := gocv.NewMat(), gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer m.Close()
	defer small.Close()
	defer first.Close()
	defer diff.Close()
	entry = -1
	for c.next(&m) {
		if frames == 0 {
			w, h = m.Cols(), m.Rows()
		}
		gocv.Resize(m, &small, image.Pt(64, 36), 0, 0, gocv.InterpolationArea)
		gocv.CvtColor(small, &small, gocv.ColorBGRToGray)
		if first.Empty() {
			small.CopyTo(&first)
		} else if entry < 0 {
			gocv.AbsDiff(small, first, &diff)
			if diff.Mean().Val1 >= 2 {
				entry = frames
			}
		}
		frames++
	}
	if frames == 0 {
		return 0, 0, 0, 0, 0, fmt.Errorf("%s: no frames decoded", path)
	}
	if entry < 0 {
		return 0, 0, 0, 0, 0, fmt.Errorf("%s: nothing moves in the clip; no car enters", path)
	}
	return frames, w, h, entry, fps, nil
}

// replay is the bench's camera: it decodes the clip at its frame rate
// and keeps the newest frame, as camera/source does, and fires the
// arming loop as the car's first frame is shown.
type replay struct {
	mu     sync.Mutex
	latest gocv.Mat
	seq    uint64
	at     time.Time
	wake   chan struct{}
}

func newReplay() *replay { return &replay{latest: gocv.NewMat(), wake: make(chan struct{})} }

// NextIf implements watch.Frames, as camera/source does.
func (r *replay) NextIf(ctx context.Context, after uint64, look func(gocv.Mat, time.Time) bool, dst *gocv.Mat) (uint64, time.Time, bool, error) {
	for {
		r.mu.Lock()
		if r.seq > after {
			seq, at := r.seq, r.at
			copied := look == nil || look(r.latest, at)
			if copied {
				r.latest.CopyTo(dst)
			}
			r.mu.Unlock()
			return seq, at, copied, nil
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, time.Time{}, false, ctx.Err()
		case <-wake:
		}
	}
}

func (r *replay) publish(m *gocv.Mat) {
	r.mu.Lock()
	r.latest, *m = *m, r.latest // swap, as camera/source does
	r.seq++
	r.at = time.Now()
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

// play shows the clip once at its frame rate; edge is called as frame
// entry is shown.
func (r *replay) play(ctx context.Context, path string, entry int, edge func()) error {
	c, err := openClip(path)
	if err != nil {
		return err
	}
	defer c.close()
	m := gocv.NewMat()
	defer m.Close()
	period := time.Duration(float64(time.Second) / c.fps)
	start := time.Now()
	for i := 0; c.next(&m); i++ {
		if d := time.Until(start.Add(time.Duration(i) * period)); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		r.publish(&m)
		if i == entry {
			edge()
		}
	}
	return nil
}

func benchLane(clip, text string, roi []image.Point, rf readerFlags, runs, warmup int, withEvidence bool, log zerolog.Logger) (*laneBenchResult, error) {
	frames, width, height, entry, fps, err := survey(clip)
	if err != nil {
		return nil, err
	}
	res := &laneBenchResult{Clip: clip, Frames: frames, FPS: fps, Width: width, Height: height, EntryFrame: entry, Plate: text,
		MinPlateWidth: rf.minPlate, Threads: rf.threads, Evidence: withEvidence, Warmup: warmup, Runs: runs,
		Steps: map[string]laneStat{}, Classes: map[decide.Class]int{}, TargetP95Ms: 150}
	for _, p := range roi {
		res.ROI = append(res.ROI, [2]int{p.X, p.Y})
	}

	// The decision: a temporary database with a permit for the plate.
	dir, err := os.MkdirTemp("", "anprctl-bench-lane-state-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := state.Open(dir, state.Migrations)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	store, err := permit.Open(db.DB)
	if err != nil {
		return nil, err
	}
	err = store.Apply(&permit.Batch{Seq: 1, Changes: []permit.Change{
		{Op: permit.Put, Facility: &permit.Facility{ID: "bench"}},
		{Op: permit.Put, Product: &permit.Product{ID: "month", Facility: "bench"}},
		{Op: permit.Put, Permit: &permit.Permit{ID: "P1", Tenant: "bench", Product: "month", Status: permit.Active,
			ValidFrom: permit.Date(2020, 1, 1), Plates: []string{text}}},
	}})
	if err != nil {
		return nil, err
	}
	pres, err := presence.Open(db.DB)
	if err != nil {
		return nil, err
	}
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		return nil, err
	}
	desk, err := access.New(store, pres, []decide.Lane{{ID: "in-1", Kind: decide.Entrance, Facility: "bench", Location: oslo,
		Policy: decide.DefaultPolicy(decide.Entrance), AntiPassback: decide.PassbackSoft, MaxStay: 7 * 24 * time.Hour,
		MinConfidence: 0.5, Fuzzy: true, FuzzyMinConfidence: 0.85}})
	if err != nil {
		return nil, err
	}

	// The camera side, as the daemon builds it.
	if _, err := onnx.Load(rf.lib); err != nil {
		return nil, err
	}
	names := strings.Split(rf.recogniser, "+")
	models, err := ocr.Load(ocr.Options{ModelsDir: rf.models, Threads: rf.threads, Fold: plate.FoldGlyph, Recogniser: names[0], Recognisers: names})
	if err != nil {
		return nil, err
	}
	defer models.Close()
	ro := reader.Options{MinPlateWidth: rf.minPlate}
	var engs []*ocr.Engine
	defer func() {
		for _, e := range engs {
			e.Close()
		}
	}()
	for _, n := range names {
		e, err := models.NewEngineFor(n)
		if err != nil {
			return nil, err
		}
		engs = append(engs, e)
	}
	if len(engs) > 1 {
		ro.Second = engs[1]
	}
	rd := reader.New(engs[0], ro)
	reg := prometheus.NewRegistry()
	wo := watch.Options{Lane: "in-1", ROI: roi}
	if withEvidence {
		ev, err := evidence.New(filepath.Join(dir, "evidence"))
		if err != nil {
			return nil, err
		}
		wo.Evidence = ev
	}
	cam := newReplay()
	defer cam.latest.Close()

	// The lane: simulated barrier, real orchestration, a sink in memory.
	sb := sim.New(sim.Options{Seed: 1})
	barrier, err := gate.New(sb, gate.Options{Lane: "in-1", Log: log.With().Str("component", "gate").Logger(),
		Metrics: gate.NewMetrics(reg)})
	if err != nil {
		return nil, err
	}
	sink := lanetest.NewSink()
	var w *watch.Watcher
	ln, err := lane.New(lane.Options{Site: "bench", Device: "bench", Lane: "in-1", Direction: "entry", Barrier: barrier,
		Trigger: func() { w.Trigger() }, Desk: desk, Sink: sink, Log: log.With().Str("component", "lane").Logger(),
		Metrics: lane.NewMetrics(reg)})
	if err != nil {
		return nil, err
	}
	w = watch.New(wo, cam, rd, track.New(track.Options{}), func(e watch.Event) {
		ln.Offer(lane.ReadEvent{Event: e.Event, Evidence: passage.Evidence{Plate: e.PlateImage, Scene: e.SceneImage}})
	}, watch.NewMetrics(reg), log.With().Str("component", "watch").Logger())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	var laneErr error
	go func() { defer wg.Done(); laneErr = ln.Run(ctx) }()
	go func() { defer wg.Done(); w.Run(ctx) }()
	defer wg.Wait()
	defer cancel()

	res.LoadAvgBefore = loadavg()
	var edgeRead, readDec, decOpen, edgeOpen []time.Duration
	for i := range warmup + runs {
		timed := i >= warmup
		before := len(sink.Passages())
		readsBefore, _ := histogram(reg, "anprd_frame_read_seconds")
		car := make(chan bool, 1)
		play := cam.play(ctx, clip, entry, func() {
			// The car reaches the arming loop as it comes into view, and
			// drives through once the arm is up.
			go func() {
				through, _ := sb.Drive(ctx, 10*time.Second, 1500*time.Millisecond)
				car <- through
			}()
		})
		if play != nil {
			return nil, play
		}
		through := <-car
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		ps, err := sink.Wait(wctx, before+1)
		wcancel()
		if err != nil {
			return nil, fmt.Errorf("run %d: no passage recorded: %w", i, err)
		}
		p := ps[len(ps)-1]
		// The barrier down again, the track ended, the car not inside: the
		// next run starts as this one did.
		for sb.Position() > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		if _, err := pres.Remove("bench", text); err != nil {
			return nil, err
		}
		if !timed {
			continue
		}
		if p.Decision != nil {
			res.Classes[p.Decision.Class]++
		}
		tm := p.Timings
		if p.Gate.Action != passage.Opened || !through || tm.Command.IsZero() {
			note := fmt.Sprintf("run %d: gate %s, through %v", i-warmup+1, p.Gate.Action, through)
			if p.Read != nil {
				note += fmt.Sprintf(", read %q (%.2f)", p.Read.Plate, p.Read.Conf)
			}
			res.FailedRunNotes = append(res.FailedRunNotes, note)
			continue
		}
		res.Opened++
		readsAfter, _ := histogram(reg, "anprd_frame_read_seconds")
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		pr := laneRun{EdgeToReadMs: ms(tm.FirstRead.Sub(tm.Trigger)), EdgeToOpenMs: ms(tm.Command.Sub(tm.Trigger)),
			FramesRead: int(readsAfter - readsBefore)}
		if p.Read != nil {
			pr.ReadConf = p.Read.Conf
		}
		if f := strings.Fields(loadavg()); len(f) > 0 {
			pr.LoadAvg1 = f[0]
		}
		res.PerRun = append(res.PerRun, pr)
		edgeRead = append(edgeRead, tm.FirstRead.Sub(tm.Trigger))
		readDec = append(readDec, tm.Decided.Sub(tm.FirstRead))
		decOpen = append(decOpen, tm.Command.Sub(tm.Decided))
		edgeOpen = append(edgeOpen, tm.Command.Sub(tm.Trigger))
	}
	res.LoadAvgAfter = loadavg()
	cancel()
	wg.Wait()
	if laneErr != nil {
		return nil, laneErr
	}
	res.Steps["edge_to_read"] = stats(edgeRead)
	res.Steps["read_to_decision"] = stats(readDec)
	res.Steps["decision_to_open"] = stats(decOpen)
	res.Steps["edge_to_open"] = stats(edgeOpen)
	res.TargetMet = res.Opened == runs && res.Steps["edge_to_open"].P95 <= res.TargetP95Ms
	res.Hits = sb.Hits()
	if n, sum := histogram(reg, "anprd_frame_read_seconds"); n > 0 {
		res.FramesRead, res.FrameReadMs = int(n), sum/n*1000
	}
	res.Note = "timings are the passages' own (trigger = the arming loop's edge, first read = the early read event reaching the lane, " +
		"decided = the access decision committed to bbolt, command = the open output set); the reader, tracker and watcher are the daemon's"
	return res, nil
}

// stats are the percentiles of ds in milliseconds (nearest rank).
func stats(ds []time.Duration) laneStat {
	if len(ds) == 0 {
		return laneStat{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return laneStat{P50: ms(rank(s, 50)), P95: ms(rank(s, 95)), Max: ms(s[len(s)-1])}
}

// histogram sums a histogram family's count and sum over its series.
func histogram(reg *prometheus.Registry, name string) (count, sum float64) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			count += float64(m.GetHistogram().GetSampleCount())
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return count, sum
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
