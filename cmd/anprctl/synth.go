package main

import (
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"

	"anprd/camera/plategen"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

// runSynth writes a synthetic clip of one car driving through a lane, as
// a folder of JPEG frames or as a video file, for the demo, for measuring
// and for trying a box without a camera. The daemon replays either as a
// camera.
func runSynth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl synth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	text := fs.String("plate", "EL43210", "the plate")
	country := fs.String("country", "NO", "the plate's country (NO or SE)")
	frames := fs.Int("frames", 50, "frames in the clip")
	fps := fs.Float64("fps", 25, "frames per second of a video file (a folder replays at 10)")
	width := fs.Int("width", 1280, "frame width")
	height := fs.Int("height", 720, "frame height")
	empty := fs.Bool("empty", false, "no car: the still road only")
	scenario := fs.String("scenario", "", "write the demo's scenario for lane in-1 or out-1 instead (anprctl demo): its cars in sequence, 960x540 at 10 fps")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: anprctl synth [flags] DIR|FILE.mp4|FILE.avi\n\n"+
			"Writes a clip: still road, a car passing in the middle half, still road.\n"+
			"With -scenario LANE: the cars of the demo at that lane, one after another, each coming\n"+
			"to the barrier, waiting, and driving through or backing out as the demo expects.\n"+
			"A folder gets DIR/000.jpg...; FILE.mp4 is H.264, FILE.avi is MJPEG.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *frames < 3 || *fps <= 0 {
		fs.Usage()
		return 2
	}
	out := fs.Arg(0)
	if *scenario != "" {
		return synthScenario(*scenario, out, stdout, stderr)
	}
	write, done, err := clipWriter(out, *fps, *width, *height)
	if err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 1
	}
	p := plategen.Plate(plate.Normalize(*text), plate.Country(*country), 110)
	defer p.Close()
	// The car is in view for the middle half of the clip, moving down.
	in, end := *frames/4, *frames*3/4
	if *empty {
		in, end = 0, 0
	}
	for i := range *frames {
		s := plategen.Scene{Width: *width, Height: *height, PlateWidth: *width / 6, Yaw: 8, Noise: 3, Light: 0.2, Seed: 1}
		s.Center = image.Pt(*width/2, -10**height)
		if i >= in && i < end {
			s.Center = image.Pt(*width/2, *height/4+(i-in)*(*height/2)/(end-in))
		}
		f, _ := plategen.Render(p, s)
		err := write(i, f)
		f.Close()
		if err != nil {
			done()
			fmt.Fprintf(stderr, "anprctl: %v\n", err)
			return 1
		}
	}
	if err := done(); err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 1
	}
	if *empty {
		fmt.Fprintf(stdout, "%s: %d frames, no car\n", out, *frames)
	} else {
		fmt.Fprintf(stdout, "%s: %d frames, %s in view in frames %d-%d\n", out, *frames, *text, in, end-1)
	}
	return 0
}

// clipWriter returns a function writing frame i to out (a folder, or a
// .mp4 or .avi file) and one finishing the clip.
func clipWriter(out string, fps float64, w, h int) (func(int, gocv.Mat) error, func() error, error) {
	codec := map[string]string{".mp4": "avc1", ".avi": "MJPG"}[strings.ToLower(filepath.Ext(out))]
	if codec == "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, nil, err
		}
		write := func(i int, f gocv.Mat) error {
			if !gocv.IMWrite(filepath.Join(out, fmt.Sprintf("%03d.jpg", i)), f) {
				return fmt.Errorf("cannot write to %s", out)
			}
			return nil
		}
		return write, func() error { return nil }, nil
	}
	vw, err := gocv.VideoWriterFile(out, codec, fps, w, h, true)
	if err != nil {
		return nil, nil, fmt.Errorf("video %s: %w", out, err)
	}
	if !vw.IsOpened() {
		vw.Close()
		return nil, nil, fmt.Errorf("video %s: this OpenCV cannot write %s", out, codec)
	}
	write := func(_ int, f gocv.Mat) error { return vw.Write(f) }
	return write, vw.Close, nil
}

// synthScenario writes the demo's scenario of one lane as a clip.
func synthScenario(lane, out string, stdout, stderr io.Writer) int {
	var cars []demoCar
	seen := map[string]bool{}
	for _, v := range demoVisits {
		if v.Lane == lane && !seen[v.Plate] {
			seen[v.Plate] = true
			cars = append(cars, carOf(v.Plate))
		}
	}
	if len(cars) == 0 {
		fmt.Fprintf(stderr, "anprctl synth: -scenario: the demo has no lane %q (in-1, out-1)\n", lane)
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "anprctl synth: %v\n", err); return 1 }
	clips, err := renderCast(cars)
	if err != nil {
		return fail(err)
	}
	empty, err := emptyRoad()
	if err != nil {
		return fail(err)
	}
	frames := laneFrames(lane, clips, empty)
	write, done, err := clipWriter(out, demoFPS, sceneW, sceneH)
	if err != nil {
		return fail(err)
	}
	for i, b := range frames {
		m, err := gocv.IMDecode(b, gocv.IMReadColor)
		if err == nil {
			err = write(i, m)
			m.Close()
		}
		if err != nil {
			done()
			return fail(err)
		}
	}
	if err := done(); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "%s: %d frames at %d fps, lane %s: %d cars\n", out, len(frames), demoFPS, lane, len(cars))
	return 0
}
