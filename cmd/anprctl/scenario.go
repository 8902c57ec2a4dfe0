package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"sync"

	"anprd/camera/plategen"
	"anprd/internal/decide"
	"anprd/internal/permit"
	"anprd/internal/plate"

	"gocv.io/x/gocv"
)

// The demo's scenario: who the cars are, what the central system says
// about them, and the order they come to the entrance and the exit.

// demoCar is one car of the cast.
type demoCar struct {
	Plate   string
	Country plate.Country
	Who     string // for people
}

var demoCars = []demoCar{
	{"EL43210", "NO", "first car of permit P-1001 (limit 1)"},
	{"KT51734", "NO", "second car of permit P-1001"},
	{"MCR264", "SE", "pay-by-plate account A-2001"},
	{"YH86201", "NO", "permit P-1002, blocked"},
	{"TPX318", "SE", "permit P-1003, awaiting payment"},
	{"HUK795", "SE", "not registered"},
}

func carOf(p string) demoCar {
	for _, c := range demoCars {
		if c.Plate == p {
			return c
		}
	}
	panic("demo: no car " + p)
}

// visit is one car at one lane, and what the central system must
// receive for it.
type visit struct {
	N       int    // 1-based, in the order of the list
	Lane    string // in-1 or out-1
	Plate   string
	Want    decide.Class
	Through bool // the barrier opens and the car drives through; else it is turned away
	After   int  // this visit waits until visit After's passage has arrived (0: none)
	Note    string
}

// demoVisits: the entrance and the exit run at once, each lane's cars in
// their order; After makes the permit's second car come while the first
// is inside, and again once it has left.
var demoVisits = []visit{
	{N: 1, Lane: "in-1", Plate: "EL43210", Want: decide.Permit, Through: true, Note: "covered by permit P-1001"},
	{N: 2, Lane: "in-1", Plate: "KT51734", Want: decide.PermitInUse, After: 1, Note: "P-1001's one place is taken by EL43210"},
	{N: 3, Lane: "in-1", Plate: "MCR264", Want: decide.Account, Through: true, Note: "charged to account A-2001"},
	{N: 4, Lane: "in-1", Plate: "YH86201", Want: decide.Blocked, Note: "permit P-1002 is blocked"},
	{N: 5, Lane: "in-1", Plate: "TPX318", Want: decide.AwaitingPayment, Note: "permit P-1003 is not paid"},
	{N: 6, Lane: "in-1", Plate: "HUK795", Want: decide.Unregistered, Note: "no permit or account; the entrance keeps it out"},
	{N: 7, Lane: "out-1", Plate: "EL43210", Want: decide.Permit, Through: true, After: 2, Note: "leaves: P-1001's place is free"},
	{N: 8, Lane: "in-1", Plate: "KT51734", Want: decide.Permit, Through: true, After: 7, Note: "now covered by P-1001"},
	{N: 9, Lane: "out-1", Plate: "MCR264", Want: decide.Account, Through: true, After: 3, Note: "leaves; the parking is charged to A-2001"},
	{N: 10, Lane: "out-1", Plate: "KT51734", Want: decide.Permit, Through: true, After: 8, Note: "leaves"},
}

// demoPermits is the central system's data for the cast, as pushed in
// the signed snapshot (sync/central.ReadRecords reads it).
func demoPermits(facility string) ([]byte, error) {
	from := permit.Date(2026, 1, 1)
	data := map[string]any{
		"facilities": []permit.Facility{{ID: facility, Name: "Demo garage", AcceptsAccounts: true}},
		"products":   []permit.Product{{ID: "month", Facility: facility, Name: "Monthly permit", Concurrency: 1}},
		"permits": []permit.Permit{
			{ID: "P-1001", Tenant: "T-1", Product: "month", Status: permit.Active, ValidFrom: from, Plates: []string{"EL43210", "KT51734"}, Concurrency: 1},
			{ID: "P-1002", Tenant: "T-2", Product: "month", Status: permit.Blocked, ValidFrom: from, Plates: []string{"YH86201"}},
			{ID: "P-1003", Tenant: "T-3", Product: "month", Status: permit.AwaitingPayment, ValidFrom: from, Plates: []string{"TPX318"}},
		},
		"accounts": []permit.Account{{ID: "A-2001", Kind: permit.Personal, Plates: []string{"MCR264"}}},
	}
	return json.MarshalIndent(data, "", "  ")
}

// The rendered scene: a 960x540 camera looking at the cars' fronts as
// they come to the barrier, the plate 150-200 pixels wide on the way in.
const (
	sceneW, sceneH = 960, 540
	approachFrames = 12 // 1.2 s at 10 fps, from the top of the view to the loop
	throughFrames  = 10 // under the arm and out of view
	demoFPS        = 10
)

// carClip is one car's frames as JPEG: coming to the barrier (the last
// frame is the car stopped on the arming loop) and driving through and
// out of view; turned away it backs out by the approach reversed.
type carClip struct {
	approach, through [][]byte
}

func scene(center image.Point, width int) plategen.Scene {
	// One seed for every frame: the road and its shapes stay still, only
	// the car moves. Light and noise are added by grain, much faster.
	return plategen.Scene{Width: sceneW, Height: sceneH, Center: center, PlateWidth: width, Yaw: 6, Seed: 1}
}

// The sensor's look, made once: brighter at the top than at the bottom,
// and a fixed pattern of noise.
var (
	grainOnce   sync.Once
	gain, noise gocv.Mat // CV32FC3, sceneW x sceneH
)

// grain gives frame (CV8UC3, sceneW x sceneH) uneven light and noise.
func grain(frame *gocv.Mat) {
	grainOnce.Do(func() {
		g := make([]byte, sceneW*sceneH*3*4)
		for y := range sceneH {
			v := math.Float32bits(float32(1 - 0.15*float64(y)/sceneH))
			for x := range sceneW * 3 {
				binary.NativeEndian.PutUint32(g[(y*sceneW*3+x)*4:], v)
			}
		}
		m, _ := gocv.NewMatFromBytes(sceneH, sceneW, gocv.MatTypeCV32FC3, g)
		gain = m.Clone() // m shares g's memory
		m.Close()
		noise = gocv.NewMatWithSize(sceneH, sceneW, gocv.MatTypeCV32FC3)
		gocv.SetRNGSeed(1)
		gocv.RandN(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(2, 2, 2, 0))
	})
	f := gocv.NewMat()
	defer f.Close()
	frame.ConvertTo(&f, gocv.MatTypeCV32FC3)
	gocv.Multiply(f, gain, &f)
	gocv.Add(f, noise, &f)
	f.ConvertTo(frame, gocv.MatTypeCV8UC3) // saturating
}

func encodeJPEG(m gocv.Mat) ([]byte, error) {
	b, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 88})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return append([]byte(nil), b.GetBytes()...), nil
}

func renderFrame(p gocv.Mat, center image.Point, width int) ([]byte, error) {
	f, _ := plategen.Render(p, scene(center, width))
	defer f.Close()
	grain(&f)
	return encodeJPEG(f)
}

// emptyRoad is the scene with no car.
func emptyRoad() ([]byte, error) {
	p := plategen.Plate("AA00000", "NO", 20)
	defer p.Close()
	return renderFrame(p, image.Pt(sceneW/2, -10*sceneH), 10)
}

// renderCar renders one car's clip: its plate as plategen draws it
// (the EU band, the country's layout), large and sharp enough to read.
func renderCar(c demoCar) (*carClip, error) {
	p := plategen.Plate(c.Plate, c.Country, 110)
	defer p.Close()
	out := &carClip{}
	lerp := func(a, b, t float64) int { return int(a + (b-a)*t) }
	for i := range approachFrames {
		t := float64(i) / float64(approachFrames-1)
		f, err := renderFrame(p, image.Pt(lerp(470, 480, t), lerp(90, 300, t)), lerp(150, 200, t))
		if err != nil {
			return nil, err
		}
		out.approach = append(out.approach, f)
	}
	for i := range throughFrames {
		t := float64(i+1) / float64(throughFrames)
		f, err := renderFrame(p, image.Pt(480, lerp(300, sceneH+260, t)), lerp(200, 260, t))
		if err != nil {
			return nil, err
		}
		out.through = append(out.through, f)
	}
	return out, nil
}

// renderCast renders every car's clip, two at a time.
func renderCast(cars []demoCar) (map[string]*carClip, error) {
	clips := map[string]*carClip{}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	work := make(chan demoCar)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				clip, err := renderCar(c)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("render %s: %w", c.Plate, err)
				}
				clips[c.Plate] = clip
				mu.Unlock()
			}
		}()
	}
	for _, c := range cars {
		work <- c
	}
	close(work)
	wg.Wait()
	return clips, firstErr
}

// laneFrames is the scenario of one lane as a fixed clip, for `anprctl
// synth -scenario`: each car comes, waits at the barrier two seconds, and
// drives through or backs out as the demo expects.
func laneFrames(lane string, clips map[string]*carClip, empty []byte) [][]byte {
	var out [][]byte
	for _, v := range demoVisits {
		if v.Lane != lane {
			continue
		}
		c := clips[v.Plate]
		for range 10 {
			out = append(out, empty)
		}
		out = append(out, c.approach...)
		for range 2 * demoFPS {
			out = append(out, c.approach[len(c.approach)-1])
		}
		if v.Through {
			out = append(out, c.through...)
		} else {
			for i := len(c.approach) - 1; i >= 0; i-- {
				out = append(out, c.approach[i])
			}
		}
	}
	return append(out, empty)
}
