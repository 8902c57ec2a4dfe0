package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

// TestBenchLane replays a synthetic clip twice through the lane: the
// barrier opens for the car each time, every step is timed, the arm never
// comes down on the car.
func TestBenchLane(t *testing.T) {
	args := readerArgs(t)
	clip := filepath.Join(t.TempDir(), "car.mp4")
	var out, errb bytes.Buffer
	if code := run([]string{"synth", "-frames", "60", "-plate", "EK98765", clip}, &out, &errb); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, errb.String())
	}
	out.Reset()
	a := append([]string{"bench", "lane"}, args...)
	a = append(a, "-runs", "2", "-warmup", "0", "-plate", "EK98765", "-roi", "320,0,960,0,960,720,320,720", "-json", clip)
	if code := run(a, &out, &errb); code != 0 {
		t.Fatalf("bench lane: exit %d: %s\n%s", code, errb.String(), out.String())
	}
	var res laneBenchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Runs != 2 || res.Opened != 2 || res.Hits != 0 || res.EntryFrame != 15 || res.Frames != 60 || len(res.ROI) != 4 {
		t.Errorf("result %+v", res)
	}
	for _, s := range []string{"edge_to_read", "read_to_decision", "edge_to_open"} {
		if st := res.Steps[s]; st.P50 <= 0 || st.P95 < st.P50 || st.Max < st.P95 {
			t.Errorf("%s: %+v", s, st)
		}
	}
	if res.Classes["permit"] != 2 || res.FramesRead == 0 || res.FrameReadMs <= 0 {
		t.Errorf("classes %v, frames read %d at %.1f ms", res.Classes, res.FramesRead, res.FrameReadMs)
	}
}

func TestLaneStats(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 20; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if s := stats(ds); s.P50 != 10 || s.P95 != 19 || s.Max != 20 {
		t.Errorf("stats = %+v", s)
	}
	if s := stats(nil); s != (laneStat{}) {
		t.Errorf("stats(nil) = %+v", s)
	}
	if _, err := parseROI("1,2,3"); err == nil {
		t.Error("odd ROI accepted")
	}
	if p, err := parseROI("0,0, 10,0, 10,10"); err != nil || len(p) != 3 || p[2].Y != 10 {
		t.Errorf("parseROI = %v, %v", p, err)
	}
}
