package source

import (
	"context"
	"fmt"
	"image"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anprd/camera/ocr/ocrtest"
	"anprd/camera/plategen"
	"anprd/camera/reader"

	"github.com/rs/zerolog"
	"gocv.io/x/gocv"
)

func scene(t testing.TB, text string, seed uint64) gocv.Mat {
	p := plategen.Plate(text, "NO", 100)
	defer p.Close()
	f, _ := plategen.Render(p, plategen.Scene{Width: 640, Height: 360, Center: image.Pt(320, 200), PlateWidth: 170, Noise: 3, Seed: seed})
	return f
}

func TestFolderReplayLoopsAndSkipsCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	for i := range 4 {
		f := scene(t, "AB12345", uint64(i))
		gocv.IMWrite(filepath.Join(dir, fmt.Sprintf("f%02d.png", i)), f)
		f.Close()
	}
	os.WriteFile(filepath.Join(dir, "f02b.jpg"), []byte("not a jpeg"), 0o644)
	s := New(Options{URL: dir, ReplayFPS: 100, MinBackoff: 10 * time.Millisecond}, zerolog.Nop())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	m := gocv.NewMat()
	defer m.Close()
	var seq uint64
	for range 10 { // more frames than files: the folder replays again
		var err error
		seq, _, err = s.Next(ctx, seq, &m)
		if err != nil {
			t.Fatal(err)
		}
		if m.Cols() != 640 || m.Rows() != 360 {
			t.Fatalf("frame %dx%d", m.Cols(), m.Rows())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	st := s.Stats()
	if st.Reconnects == 0 || st.Frames < 10 {
		t.Errorf("stats %+v: want a replay restart and 10+ frames", st)
	}
}

func TestNewestFrameWinsAndDropsCount(t *testing.T) {
	s := New(Options{}, zerolog.Nop())
	defer s.Close()
	for i := range 5 {
		f := scene(t, "AB12345", uint64(i))
		s.publish(&f)
		f.Close()
	}
	m := gocv.NewMat()
	defer m.Close()
	seq, _, err := s.Next(context.Background(), 0, &m)
	if err != nil || seq != 5 {
		t.Fatalf("Next = %d, %v; want the newest, 5", seq, err)
	}
	if st := s.Stats(); st.Drops != 4 || st.Frames != 5 {
		t.Errorf("stats %+v, want 4 drops of 5", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := s.Next(ctx, seq, &m); err == nil {
		t.Error("Next returned without a newer frame")
	}
}

// mjpeg serves a multipart MJPEG stream of one frame, as IP cameras do.
func mjpeg(frame []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mw := multipart.NewWriter(w)
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+mw.Boundary())
		for r.Context().Err() == nil {
			pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"image/jpeg"}, "Content-Length": {fmt.Sprint(len(frame))}})
			if err != nil {
				return
			}
			if _, err := pw.Write(frame); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(40 * time.Millisecond)
		}
	})
}

// TestStreamDropsAndComesBack: an MJPEG camera goes away and comes back
// on the same address; the source reconnects by itself and the plate is
// read again, with no restart.
func TestStreamDropsAndComesBack(t *testing.T) {
	rd := reader.New(ocrtest.Engine(t), reader.Options{})

	f := scene(t, "EL43210", 1)
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	jpeg := append([]byte(nil), buf.GetBytes()...)
	buf.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := &http.Server{Handler: mjpeg(jpeg)}
	go srv.Serve(ln)

	s := New(Options{URL: "http://" + addr + "/video.mjpg", MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}, zerolog.Nop())
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()

	m := gocv.NewMat()
	defer m.Close()
	readPlate := func(after uint64) uint64 {
		t.Helper()
		seq, _, err := s.Next(ctx, after, &m)
		if err != nil {
			t.Fatalf("no frame: %v (stats %+v)", err, s.Stats())
		}
		reads, err := rd.ReadFrame(m, image.Rectangle{})
		if err != nil || len(reads) != 1 || reads[0].Plate != "EL43210" {
			t.Fatalf("reads %+v, %v", reads, err)
		}
		return seq
	}
	seq := readPlate(0)

	// The camera goes away.
	srv.Close()
	for s.Stats().Connected {
		if ctx.Err() != nil {
			t.Fatal("source never noticed the stream ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a reconnect or two fails meanwhile
	before := s.Stats()

	// It comes back on the same address.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv = &http.Server{Handler: mjpeg(jpeg)}
	go srv.Serve(ln)
	defer srv.Close()
	s.mu.Lock()
	last := s.seq
	s.mu.Unlock()
	readPlate(max(seq, last))
	if after := s.Stats(); after.Reconnects < before.Reconnects || after.Reconnects == 0 || !after.Connected {
		t.Errorf("stats before %+v after %+v", before, after)
	}
	cancel()
	<-done
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:hunter2@10.0.0.5:554/stream1": "rtsp://admin:xxxxx@10.0.0.5:554/stream1",
		"rtsp://10.0.0.5/stream1":                   "rtsp://10.0.0.5/stream1",
		"http://viewer@cam/mjpeg":                   "http://viewer@cam/mjpeg",
		"/dev/video0":                               "/dev/video0",
		"/var/lib/anprd/replay":                     "/var/lib/anprd/replay",
	} {
		if got := Redact(in); got != want || strings.Contains(got, "hunter2") {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
