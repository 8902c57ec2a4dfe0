// Package source takes frames from a lane's camera: an RTSP or HTTP MJPEG
// stream, a V4L2 device, a video file or a folder of images (replay). It
// reconnects with jittered backoff after errors and at the end of a
// stream, and keeps only the newest frame: a slow reader never builds up
// lag, it skips frames, and the skips are counted. It does not decode
// plates or decide anything.
package source

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"gocv.io/x/gocv"
)

// Options configure a Source.
type Options struct {
	URL           string  // rtsp://, rtsps://, http(s)://, /dev/videoN, a video file or a folder
	RTSPTransport string  // tcp (default) or udp
	ReplayFPS     float64 // pace of a folder or file replay; default 10 for folders, the file's own for files
	MinBackoff    time.Duration
	MaxBackoff    time.Duration
}

// Stats is the source's health, for metrics and the status page.
type Stats struct {
	Connected  bool      `json:"connected"`
	Frames     uint64    `json:"frames"`
	Drops      uint64    `json:"drops"` // frames replaced before anyone took them
	Reconnects uint64    `json:"reconnects"`
	FPS        float64   `json:"fps"`
	LastFrame  time.Time `json:"last_frame"`
	LastError  string    `json:"last_error,omitempty"`
}

// Source is one camera.
type Source struct {
	o   Options
	log zerolog.Logger

	mu     sync.Mutex
	latest gocv.Mat
	seq    uint64
	at     time.Time
	taken  uint64 // seq last handed out
	wake   chan struct{}
	stats  Stats
	fpsWin []time.Time
}

// New returns a source; Run starts it.
func New(o Options, log zerolog.Logger) *Source {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	return &Source{o: o, log: log, latest: gocv.NewMat(), wake: make(chan struct{})}
}

// Stats returns a copy of the source's health.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close frees the frame buffer; call after Run has returned.
func (s *Source) Close() { s.latest.Close() }

// Run captures until ctx ends, reconnecting after every failure.
func (s *Source) Run(ctx context.Context) error {
	backoff := s.o.MinBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := s.capture(ctx)
		s.mu.Lock()
		s.stats.Connected = false
		if err != nil {
			s.stats.LastError = err.Error()
		}
		s.mu.Unlock()
		if ctx.Err() != nil {
			break
		}
		// A connection that delivered for a while starts the backoff
		// afresh; one that fails at once backs off further.
		if time.Since(start) > 10*s.o.MinBackoff {
			backoff = s.o.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter: boxes restarted together do not reconnect in step
		if errors.Is(err, errEnd) {
			// A replay reached its end, or a stream ended cleanly.
			s.log.Debug().Dur("restart_in", wait).Msg("camera stream ended")
		} else {
			s.log.Warn().Err(err).Dur("retry_in", wait).Msg("camera stream lost")
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(2*backoff, s.o.MaxBackoff)
		s.mu.Lock()
		s.stats.Reconnects++
		s.mu.Unlock()
	}
	return nil
}

// errEnd is the end of a file or folder; the source starts it again.
var errEnd = errors.New("end of stream")

func (s *Source) capture(ctx context.Context) error {
	if fi, err := os.Stat(s.o.URL); err == nil && fi.IsDir() {
		return s.captureFolder(ctx)
	}
	var vc *gocv.VideoCapture
	var err error
	pace := 0.0
	switch {
	case strings.HasPrefix(s.o.URL, "/dev/video"):
		n, perr := strconv.Atoi(strings.TrimPrefix(s.o.URL, "/dev/video"))
		if perr != nil {
			return fmt.Errorf("source: %s is not a /dev/videoN device", s.o.URL)
		}
		vc, err = gocv.VideoCaptureDeviceWithAPI(n, gocv.VideoCaptureV4L2)
	default:
		vc, err = openFFmpeg(s.o.URL, s.o.RTSPTransport)
		if err == nil && !strings.Contains(s.o.URL, "://") {
			pace = s.o.ReplayFPS
			if pace <= 0 {
				pace = vc.Get(gocv.VideoCaptureFPS)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("source: open %s: %w", Redact(s.o.URL), err)
	}
	defer vc.Close()
	if !vc.IsOpened() {
		return fmt.Errorf("source: cannot open %s", Redact(s.o.URL))
	}
	s.log.Info().Str("camera", Redact(s.o.URL)).Msg("camera stream open")
	frame := gocv.NewMat()
	defer frame.Close()
	tick := pacer(pace)
	defer tick.Stop()
	for ctx.Err() == nil {
		if !vc.Read(&frame) || frame.Empty() {
			return errEnd
		}
		s.publish(&frame)
		tick.wait(ctx)
	}
	return nil
}

// ffmpegOpen serialises opens: OpenCV reads FFmpeg's options from the
// process environment when a capture opens, and lanes may want different
// RTSP transports.
var ffmpegOpen sync.Mutex

func openFFmpeg(url, transport string) (*gocv.VideoCapture, error) {
	ffmpegOpen.Lock()
	defer ffmpegOpen.Unlock()
	// A camera that stops sending must not block a read for long: the
	// read then fails and the source reconnects (and shutdown is not held
	// up). FFmpeg takes these timeouts in microseconds.
	opts := ""
	switch {
	case strings.HasPrefix(url, "rtsp"):
		if transport == "" {
			transport = "tcp"
		}
		opts = "rtsp_transport;" + transport + "|timeout;5000000"
	case strings.HasPrefix(url, "http"):
		opts = "rw_timeout;5000000"
	}
	os.Setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", opts)
	return gocv.VideoCaptureFileWithAPI(url, gocv.VideoCaptureFFmpeg)
}

var imageExt = regexp.MustCompile(`(?i)\.(jpe?g|png|bmp)$`)

// captureFolder replays the images of a folder in name order.
func (s *Source) captureFolder(ctx context.Context) error {
	ents, err := os.ReadDir(s.o.URL)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	var files []string
	for _, e := range ents {
		if !e.IsDir() && imageExt.MatchString(e.Name()) {
			files = append(files, filepath.Join(s.o.URL, e.Name()))
		}
	}
	slices.Sort(files)
	if len(files) == 0 {
		return fmt.Errorf("source: no images in %s", s.o.URL)
	}
	fps := s.o.ReplayFPS
	if fps <= 0 {
		fps = 10
	}
	tick := pacer(fps)
	defer tick.Stop()
	for _, f := range files {
		if ctx.Err() != nil {
			return nil
		}
		img := gocv.IMRead(f, gocv.IMReadColor)
		if img.Empty() {
			// A corrupt file is skipped, not fatal.
			s.log.Warn().Str("file", f).Msg("cannot decode image; skipped")
			continue
		}
		s.publish(&img)
		img.Close()
		tick.wait(ctx)
	}
	return errEnd
}

// publish makes *frame the newest by swapping it with the shared buffer:
// the caller gets the previous buffer back to read the next frame into,
// so a frame is not copied on its way in (Next copies it out once).
func (s *Source) publish(frame *gocv.Mat) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	*frame, s.latest = s.latest, *frame
	if s.seq > s.taken {
		s.stats.Drops++
	}
	s.seq++
	s.at = now
	s.stats.Connected = true
	s.stats.Frames++
	s.stats.LastFrame = now
	s.stats.LastError = ""
	s.fpsWin = append(s.fpsWin, now)
	for len(s.fpsWin) > 1 && now.Sub(s.fpsWin[0]) > 2*time.Second {
		s.fpsWin = s.fpsWin[1:]
	}
	if n := len(s.fpsWin); n > 1 {
		s.stats.FPS = float64(n-1) / now.Sub(s.fpsWin[0]).Seconds()
	}
	close(s.wake)
	s.wake = make(chan struct{})
}

// Next waits for a frame newer than after, copies it into dst and
// returns its sequence number and capture time.
func (s *Source) Next(ctx context.Context, after uint64, dst *gocv.Mat) (uint64, time.Time, error) {
	seq, at, _, err := s.NextIf(ctx, after, nil, dst)
	return seq, at, err
}

// NextIf waits for a frame newer than after and shows it to look, which
// says whether to copy it into dst; a nil look copies every frame. Most
// frames of a still scene are only looked at, and a 1080p frame is 6 MB
// to copy. look runs with the source locked: it must be quick and must
// not keep the Mat.
func (s *Source) NextIf(ctx context.Context, after uint64, look func(frame gocv.Mat, at time.Time) bool, dst *gocv.Mat) (seq uint64, at time.Time, copied bool, err error) {
	for {
		s.mu.Lock()
		if s.seq > after {
			seq, at = s.seq, s.at
			s.taken = seq
			if copied = look == nil || look(s.latest, at); copied {
				s.latest.CopyTo(dst)
			}
			s.mu.Unlock()
			return seq, at, copied, nil
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, time.Time{}, false, ctx.Err()
		case <-wake:
		}
	}
}

// pacer paces replays; a zero rate does not wait.
type ticker struct{ t *time.Ticker }

func pacer(fps float64) ticker {
	if fps <= 0 || fps > 1000 {
		return ticker{}
	}
	return ticker{time.NewTicker(time.Duration(float64(time.Second) / fps))}
}

func (t ticker) wait(ctx context.Context) {
	if t.t == nil {
		return
	}
	select {
	case <-ctx.Done():
	case <-t.t.C:
	}
}

func (t ticker) Stop() {
	if t.t != nil {
		t.t.Stop()
	}
}

// Redact removes the password from a camera URL such as
// rtsp://admin:secret@10.0.0.5/stream, for logs and the status page.
// Anything that is not a URL with a password is returned as it is.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
