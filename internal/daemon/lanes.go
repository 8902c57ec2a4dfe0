package daemon

import (
	"fmt"
	"image"
	"slices"
	"strings"
	"time"

	"anprd/camera/ocr"
	"anprd/camera/reader"
	"anprd/camera/source"
	"anprd/camera/track"
	"anprd/camera/watch"
	"anprd/internal/config"
	"anprd/internal/health"
	"anprd/internal/plate"
	"anprd/sync/protocol"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// lane is one lane's camera side as the daemon runs it.
type lane struct {
	id   string
	comp *health.Component
	eng  *ocr.Engine
	alt  *ocr.Engine // the second recogniser of a joined camera.recogniser, or nil
	src  *source.Source
	w    *watch.Watcher
	gate *gateLane // the lane's decision and barrier
	page *pageData
	log  zerolog.Logger
}

// buildLanes creates each lane's source, reader, tracker and watcher.
// A lane whose reader cannot be built is reported failed; the others run.
func (d *Daemon) buildLanes(cfg *config.Config, reg prometheus.Registerer) {
	wm := watch.NewMetrics(reg)
	// One set of sessions serves every lane (see ocr.Models).
	// Each recogniser the lanes name is loaded once.
	var recs []string
	for _, lc := range cfg.Lanes {
		for _, r := range strings.Split(lc.Camera.Recogniser, "+") {
			if !slices.Contains(recs, r) {
				recs = append(recs, r)
			}
		}
	}
	models, err := ocr.Load(ocr.Options{ModelsDir: cfg.Reader.ModelsDir, Threads: cfg.Reader.Threads, Fold: plate.FoldGlyph, Recognisers: recs})
	if err != nil {
		d.log.Error().Err(err).Msg("plate reader unusable")
	}
	d.models = models
	for _, lc := range cfg.Lanes {
		l := &lane{id: lc.ID, comp: d.health.Register("lane/" + lc.ID), page: d.page, log: d.log.With().Str("lane", lc.ID).Logger()}
		if models == nil {
			l.comp.Set(health.Failed, false, err.Error())
			continue
		}
		// "plate+ppocr": each line is read by both, the surer reading kept.
		names := strings.Split(lc.Camera.Recogniser, "+")
		eng, err := models.NewEngineFor(names[0])
		if err != nil {
			l.comp.Set(health.Failed, false, err.Error())
			continue
		}
		ro := readerOptions(lc.Camera)
		if len(names) == 2 {
			alt, err := models.NewEngineFor(names[1])
			if err != nil {
				eng.Close()
				l.comp.Set(health.Failed, false, err.Error())
				continue
			}
			l.alt, ro.Second = alt, alt
		}
		l.eng = eng
		l.src = source.New(source.Options{URL: lc.Camera.Source, RTSPTransport: lc.Camera.RTSPTransport}, l.log.With().Str("component", "camera").Logger())
		rd := reader.New(eng, ro)
		var roi []image.Point
		for _, p := range lc.Camera.ROI {
			roi = append(roi, image.Pt(p[0], p[1]))
		}
		wo := watch.Options{Lane: lc.ID, ROI: roi}
		if d.evidence != nil {
			wo.Evidence = d.evidence
		}
		l.gate = d.gates[lc.ID]
		l.w = watch.New(wo, l.src, rd, track.New(track.Options{}), l.onEvent, wm, l.log)
		if l.gate != nil {
			l.gate.w.Store(l.w)
		}
		d.lanes = append(d.lanes, l)
		d.add(stageFrames, "camera/"+lc.ID, l.src.Run)
		d.add(stageLanes, "lane/"+lc.ID, l.w.Run)
	}
	reg.MustRegister(&cameraCollector{d: d})
}

// onEvent receives the lane's read events: it logs them (the plate is
// personal data and is logged at debug level only) and hands them to the
// lane's decision and barrier.
func (l *lane) onEvent(ev watch.Event) {
	l.log.Info().Str("kind", ev.Kind.String()).Float32("conf", ev.Conf).Int("frames", len(ev.Frames)).
		Bool("suppressed", ev.Suppressed).Str("evidence", ev.SceneImage).Msg("read event")
	l.log.Debug().Str("plate", ev.Plate).Str("country", string(ev.Country)).Strs("runners_up", ev.RunnersUp).Msg("read event plate")
	l.page.addRead(l.id, ev)
	if l.gate != nil {
		l.gate.offer(ev)
	}
}

// readerOptions are the plate reader's settings from a lane's camera.
func readerOptions(c config.Camera) reader.Options {
	return reader.Options{MinPlateWidth: c.MinPlateWidth, Countries: c.Countries}
}

// laneRound updates each lane's health from its camera: a camera that
// has delivered no frame for five seconds holds readiness back.
func (d *Daemon) laneRound(now time.Time) {
	for _, l := range d.lanes {
		st := l.src.Stats()
		detail := fmt.Sprintf("camera %.1f fps, %d frames, %d dropped, %d reconnects", st.FPS, st.Frames, st.Drops, st.Reconnects)
		if ev := l.w.Last(); !ev.Last.IsZero() {
			detail += fmt.Sprintf("; last read %s (%s, %.2f) at %s", ev.Plate, ev.Kind, ev.Conf, ev.Last.Format(time.TimeOnly))
		}
		state := health.Degraded
		switch {
		case st.Connected && now.Sub(st.LastFrame) < 5*time.Second:
			state = health.OK
			l.comp.Set(health.OK, true, detail)
		case st.LastError != "":
			detail = "camera not delivering: " + st.LastError + "; " + detail
			l.comp.Set(health.Degraded, false, detail)
		default:
			detail = "camera not delivering; " + detail
			l.comp.Set(health.Degraded, false, detail)
		}
		// The central system hears of each change of the camera's state.
		if prev, ok := d.laneStates[l.id]; (!ok || prev != state) && d.link != nil {
			d.link.tel.Report(protocol.Event{Time: now, Lane: l.id, Part: protocol.PartCamera, State: string(state), Detail: detail})
		}
		d.laneStates[l.id] = state
	}
}

func (d *Daemon) closeLanes() {
	for _, l := range d.lanes {
		l.src.Close()
		l.eng.Close()
		if l.alt != nil {
			l.alt.Close()
		}
	}
	if d.models != nil {
		d.models.Close()
	}
	d.closeGates()
}

// cameraCollector exports the sources' counters at scrape time.
type cameraCollector struct{ d *Daemon }

var (
	camFramesDesc     = prometheus.NewDesc("anprd_camera_frames_total", "Frames received from the lane's camera.", []string{"lane"}, nil)
	camDropsDesc      = prometheus.NewDesc("anprd_camera_frames_dropped_total", "Frames replaced by a newer one before they were read.", []string{"lane"}, nil)
	camReconnectsDesc = prometheus.NewDesc("anprd_camera_reconnects_total", "Times the camera stream was reopened.", []string{"lane"}, nil)
	camConnectedDesc  = prometheus.NewDesc("anprd_camera_connected", "1 while the camera stream is open.", []string{"lane"}, nil)
	camFPSDesc        = prometheus.NewDesc("anprd_camera_frames_per_second", "Frames per second over the last two seconds.", []string{"lane"}, nil)
	camLastDesc       = prometheus.NewDesc("anprd_camera_last_frame_timestamp_seconds", "When the last frame arrived.", []string{"lane"}, nil)
)

func (c *cameraCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{camFramesDesc, camDropsDesc, camReconnectsDesc, camConnectedDesc, camFPSDesc, camLastDesc} {
		ch <- d
	}
}

func (c *cameraCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.d.lanes {
		st := l.src.Stats()
		ch <- prometheus.MustNewConstMetric(camFramesDesc, prometheus.CounterValue, float64(st.Frames), l.id)
		ch <- prometheus.MustNewConstMetric(camDropsDesc, prometheus.CounterValue, float64(st.Drops), l.id)
		ch <- prometheus.MustNewConstMetric(camReconnectsDesc, prometheus.CounterValue, float64(st.Reconnects), l.id)
		ch <- prometheus.MustNewConstMetric(camConnectedDesc, prometheus.GaugeValue, b2f(st.Connected), l.id)
		ch <- prometheus.MustNewConstMetric(camFPSDesc, prometheus.GaugeValue, st.FPS, l.id)
		last := 0.0
		if !st.LastFrame.IsZero() {
			last = float64(st.LastFrame.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(camLastDesc, prometheus.GaugeValue, last, l.id)
	}
}
