package ocr

import (
	"fmt"
	"image"
	"math"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// DBNet post-processing thresholds, PaddleOCR's defaults.
const (
	detThresh     = 0.3 // a pixel is text above this probability
	detBoxThresh  = 0.6 // a box is text when its mean probability is above this
	detUnclip     = 1.5 // how far a shrunk text kernel is grown back
	detMinSide    = 3   // smaller kernels are noise
	detMaxContour = 1000
)

// Quad is a text line's corners in image coordinates: top-left, top-right,
// bottom-right, bottom-left, as read along the text.
type Quad [4]Point

// Point is a position in image coordinates.
type Point struct{ X, Y float64 }

// Width is the length of the quad's top edge.
func (q Quad) Width() float64 { return dist(q[0], q[1]) }

// Height is the length of the quad's left edge.
func (q Quad) Height() float64 { return dist(q[0], q[3]) }

// Bounds is the axis-aligned rectangle around the quad.
func (q Quad) Bounds() image.Rectangle {
	r := image.Rectangle{Min: image.Pt(math.MaxInt32, math.MaxInt32), Max: image.Pt(math.MinInt32, math.MinInt32)}
	for _, p := range q {
		r.Min.X = min(r.Min.X, int(math.Floor(p.X)))
		r.Min.Y = min(r.Min.Y, int(math.Floor(p.Y)))
		r.Max.X = max(r.Max.X, int(math.Ceil(p.X)))
		r.Max.Y = max(r.Max.Y, int(math.Ceil(p.Y)))
	}
	return r
}

// Grow moves the quad's sides out by fx of its width on the left and
// right and fy of its height on the top and bottom.
func (q Quad) Grow(fx, fy float64) Quad {
	w, h := q.Width(), q.Height()
	if w == 0 || h == 0 {
		return q
	}
	u := Point{(q[1].X - q[0].X) / w, (q[1].Y - q[0].Y) / w}
	v := Point{(q[3].X - q[0].X) / h, (q[3].Y - q[0].Y) / h}
	dx, dy := fx*w, fy*h
	mv := func(p Point, a, b float64) Point {
		return Point{p.X + a*dx*u.X + b*dy*v.X, p.Y + a*dx*u.Y + b*dy*v.Y}
	}
	return Quad{mv(q[0], -1, -1), mv(q[1], 1, -1), mv(q[2], 1, 1), mv(q[3], -1, 1)}
}

func dist(a, b Point) float64 { return math.Hypot(a.X-b.X, a.Y-b.Y) }

// Box is a detected text line.
type Box struct {
	Quad  Quad
	Score float32 // mean text probability inside the kernel
}

// Detect finds text lines in the part of img (8-bit BGR) inside roi; an
// empty roi means the whole image. The detector sees the region scaled by
// scale (at most 1; the time it takes grows with the square); scale 0
// fits the region's longer side to Options.DetMaxSide. Quads are in img's
// coordinates.
func (e *Engine) Detect(img gocv.Mat, roi image.Rectangle, scale float64) ([]Box, error) {
	full := image.Rect(0, 0, img.Cols(), img.Rows())
	if roi.Empty() {
		roi = full
	}
	roi = roi.Intersect(full)
	if roi.Dx() < 32 || roi.Dy() < 32 {
		return nil, fmt.Errorf("ocr: region %v too small to search", roi)
	}
	src := img
	if roi != full {
		src = img.Region(roi)
		defer src.Close()
	}
	// Both sides must be multiples of 32, as the network's strides need.
	if scale <= 0 {
		scale = float64(e.o.DetMaxSide) / float64(max(roi.Dx(), roi.Dy()))
	}
	scale = math.Min(1, scale)
	w := max(32, int(math.Round(float64(roi.Dx())*scale/32))*32)
	h := max(32, int(math.Round(float64(roi.Dy())*scale/32))*32)
	resized := &e.detImg
	gocv.Resize(src, resized, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)

	in, out, err := e.detBuf.get(ort.NewShape(1, 3, int64(h), int64(w)), ort.NewShape(1, 1, int64(h), int64(w)))
	if err != nil {
		return nil, fmt.Errorf("ocr: detection tensors: %w", err)
	}
	pix, err := resized.DataPtrUint8()
	if err != nil {
		return nil, fmt.Errorf("ocr: frame data: %w", err)
	}
	// ImageNet normalisation on BGR planes, as PaddleOCR feeds its
	// detector (it reads images with OpenCV and does not reorder).
	mean := [3]float32{0.485, 0.456, 0.406}
	std := [3]float32{0.229, 0.224, 0.225}
	data := in.GetData()
	plane := w * h
	for i := 0; i < plane; i++ {
		for c := 0; c < 3; c++ {
			data[c*plane+i] = (float32(pix[i*3+c])/255 - mean[c]) / std[c]
		}
	}
	// One detection at a time per Models: the detector's working memory
	// (its arena) then holds one frame's layers, not one per lane. Two
	// 1080p lanes peaked at 421 MB resident detecting at once and at 336
	// MB taking turns; a lane waits at most one detection (30 to 90 ms)
	// when two cars arrive in the same instant.
	e.detMu.Lock()
	err = e.det.Run([]ort.Value{in}, []ort.Value{out})
	e.detMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("ocr: detection: %w", err)
	}
	prob := out.GetData()

	// Binarise the probability map and trace its blobs.
	if cap(e.bitmap) < plane {
		e.bitmap = make([]byte, plane)
	}
	bits := e.bitmap[:plane]
	for i, p := range prob {
		if p > detThresh {
			bits[i] = 255
		} else {
			bits[i] = 0
		}
	}
	bm, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, bits)
	if err != nil {
		return nil, fmt.Errorf("ocr: bitmap: %w", err)
	}
	defer bm.Close()
	contours := gocv.FindContours(bm, gocv.RetrievalList, gocv.ChainApproxSimple)
	defer contours.Close()

	sx := float64(roi.Dx()) / float64(w)
	sy := float64(roi.Dy()) / float64(h)
	var boxes []Box
	for i := 0; i < min(contours.Size(), detMaxContour); i++ {
		c := contours.At(i)
		if c.Size() < 4 {
			continue
		}
		rr := gocv.MinAreaRect(c)
		q := orderQuad(rr.Points)
		if min(q.Width(), q.Height()) < detMinSide {
			continue
		}
		score := meanInside(prob, w, h, q)
		if score < detBoxThresh {
			continue
		}
		q = unclip(q, detUnclip)
		if min(q.Width(), q.Height()) < detMinSide+2 {
			continue
		}
		for k := range q {
			q[k].X = clamp(q[k].X*sx, 0, float64(roi.Dx()-1)) + float64(roi.Min.X)
			q[k].Y = clamp(q[k].Y*sy, 0, float64(roi.Dy()-1)) + float64(roi.Min.Y)
		}
		boxes = append(boxes, Box{Quad: q, Score: score})
	}
	return boxes, nil
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// orderQuad puts a rectangle's four corners in reading order: the two
// leftmost points give top-left and bottom-left, the two rightmost
// top-right and bottom-right.
func orderQuad(pts []image.Point) Quad {
	p := make([]Point, len(pts))
	for i, q := range pts {
		p[i] = Point{float64(q.X), float64(q.Y)}
	}
	// Sort by x (four elements: insertion sort).
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && p[j].X < p[j-1].X; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
	tl, bl := p[0], p[1]
	if bl.Y < tl.Y {
		tl, bl = bl, tl
	}
	tr, br := p[2], p[3]
	if br.Y < tr.Y {
		tr, br = br, tr
	}
	return Quad{tl, tr, br, bl}
}

// unclip grows the detector's shrunk text kernel back to the text's size:
// each side moves out by area*ratio/perimeter, as DBNet's training shrank
// it.
func unclip(q Quad, ratio float64) Quad {
	w, h := q.Width(), q.Height()
	if w == 0 || h == 0 {
		return q
	}
	d := w * h * ratio / (2 * (w + h))
	u := Point{(q[1].X - q[0].X) / w, (q[1].Y - q[0].Y) / w}
	v := Point{(q[3].X - q[0].X) / h, (q[3].Y - q[0].Y) / h}
	mv := func(p Point, a, b float64) Point {
		return Point{p.X + a*d*u.X + b*d*v.X, p.Y + a*d*u.Y + b*d*v.Y}
	}
	return Quad{mv(q[0], -1, -1), mv(q[1], 1, -1), mv(q[2], 1, 1), mv(q[3], -1, 1)}
}

// meanInside is the mean of prob (w x h) over the pixels inside the
// convex quad q.
func meanInside(prob []float32, w, h int, q Quad) float32 {
	b := q.Bounds().Intersect(image.Rect(0, 0, w, h))
	var sum float64
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if inConvex(q, float64(x)+0.5, float64(y)+0.5) {
				sum += float64(prob[y*w+x])
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float32(sum / float64(n))
}

// inConvex reports whether (x, y) is inside the convex quad, whichever
// way round its corners go.
func inConvex(q Quad, x, y float64) bool {
	var pos, neg bool
	for i := range q {
		a, b := q[i], q[(i+1)%4]
		c := (b.X-a.X)*(y-a.Y) - (b.Y-a.Y)*(x-a.X)
		pos = pos || c > 0
		neg = neg || c < 0
	}
	return !(pos && neg)
}
