package main

import (
	"context"
	"errors"
	"net"
	"time"

	"anprd/camera/ocr"
	"anprd/camera/onnx"
	"anprd/camera/source"
	"anprd/sync/mqtt"

	"github.com/rs/zerolog"
	"gocv.io/x/gocv"
)

// The checks' real dependencies: the daemon's own packages, used the way
// the daemon uses them.

type ortLoader struct{}

func (ortLoader) Runtime(lib string) (string, error) { return onnx.Load(lib) }

func (ortLoader) Check(dir string) error {
	_, err := onnx.CheckModels(dir)
	return err
}

func (ortLoader) Sessions(dir string, threads int) error {
	m, err := ocr.Load(ocr.Options{ModelsDir: dir, Threads: threads, Recognisers: ocr.Recognisers})
	if err != nil {
		return err
	}
	m.Close()
	return nil
}

type netProbe struct{ d net.Dialer }

func (n *netProbe) LookupHost(ctx context.Context, host string) ([]string, error) {
	return net.DefaultResolver.LookupHost(ctx, host)
}

func (n *netProbe) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return n.d.DialContext(ctx, "tcp", addr)
}

// Connect runs a sync/mqtt client for one attempt: the backoff is longer
// than any timeout, so the first failure is the answer.
func (n *netProbe) Connect(ctx context.Context, o mqtt.Options) error {
	o.Log = zerolog.Nop()
	o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour
	c, err := mqtt.New(o)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.Run(rctx, nil); close(done) }()
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c.Connected() {
			return nil
		}
		if e := c.LastError(); e != "" {
			return errors.New(e)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func realBroker() brokerProbe { return &netProbe{} }

type realCam struct{ n *netProbe }

func realCamera() cameraProbe { return realCam{&netProbe{}} }

func (r realCam) Dial(ctx context.Context, addr string) error {
	c, err := r.n.Dial(ctx, addr)
	if err == nil {
		c.Close()
	}
	return err
}

// Frame runs the daemon's camera source until its first frame, its first
// error, or ctx's end.
func (realCam) Frame(ctx context.Context, src, transport string) (int, int, error) {
	s := source.New(source.Options{URL: src, RTSPTransport: transport, MinBackoff: time.Hour, MaxBackoff: time.Hour}, zerolog.Nop())
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(rctx); close(done) }()
	mat := gocv.NewMat()
	got := make(chan error, 1)
	go func() {
		_, _, err := s.Next(rctx, 0, &mat)
		got <- err
	}()
	var err error
	w, h := 0, 0
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err = <-got:
			got = nil
			if err == nil {
				w, h = mat.Cols(), mat.Rows()
			}
			break wait
		case <-tick.C:
			// A source that failed before its first frame retries only
			// after its backoff: its error is the answer.
			if st := s.Stats(); st.LastError != "" && st.Frames == 0 {
				err = errors.New(st.LastError)
				break wait
			}
		}
	}
	cancel()
	if got != nil {
		<-got
	}
	mat.Close()
	// An FFmpeg open does not see the context; one that hangs past its own
	// timeout is left behind, and anprctl exits soon anyway.
	select {
	case <-done:
		s.Close()
	case <-time.After(10 * time.Second):
	}
	return w, h, err
}
