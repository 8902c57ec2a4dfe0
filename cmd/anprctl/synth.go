package main

import (
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"

	"anprd/camera/plategen"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

// runSynth writes a synthetic clip (a folder of JPEG frames) of one car
// driving through a lane, for the demo and for trying a box without a
// camera. The daemon replays such a folder as a camera.
func runSynth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anprctl synth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	text := fs.String("plate", "EL43210", "the plate")
	country := fs.String("country", "NO", "the plate's country (NO or SE)")
	frames := fs.Int("frames", 50, "frames in the clip (10 per second on replay)")
	width := fs.Int("width", 1280, "frame width")
	height := fs.Int("height", 720, "frame height")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: anprctl synth [flags] DIR\n\nWrites DIR/000.jpg... : still road, a car passing, still road.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *frames < 3 {
		fs.Usage()
		return 2
	}
	dir := fs.Arg(0)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "anprctl: %v\n", err)
		return 1
	}
	p := plategen.Plate(plate.Normalize(*text), plate.Country(*country), 110)
	defer p.Close()
	// The car is in view for the middle half of the clip, moving down.
	in, out := *frames/4, *frames*3/4
	for i := range *frames {
		s := plategen.Scene{Width: *width, Height: *height, PlateWidth: *width / 6, Yaw: 8, Noise: 3, Light: 0.2, Seed: 1}
		s.Center = image.Pt(*width/2, -10**height)
		if i >= in && i < out {
			s.Center = image.Pt(*width/2, *height/4+(i-in)*(*height/2)/(out-in))
		}
		f, _ := plategen.Render(p, s)
		ok := gocv.IMWrite(filepath.Join(dir, fmt.Sprintf("%03d.jpg", i)), f)
		f.Close()
		if !ok {
			fmt.Fprintf(stderr, "anprctl: cannot write to %s\n", dir)
			return 1
		}
	}
	fmt.Fprintf(stdout, "%s: %d frames, %s in view in frames %d-%d\n", dir, *frames, *text, in, out-1)
	return 0
}
