// Command onnxrun runs an ONNX model on one float32 input with the ONNX
// Runtime library and Go binding anprd uses, so that the recogniser's
// export can be checked against PyTorch (train/anprtrain/export.py). It is
// a development tool that `make model` runs; the daemon never uses it.
//
// Files are: a little-endian uint32 rank, that many int64 dimensions, then
// the float32 values.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"anprd/camera/onnx"

	ort "github.com/yalue/onnxruntime_go"
)

func main() {
	lib := flag.String("onnxruntime", ".deps/lib/libonnxruntime.so.1", "ONNX Runtime library")
	model := flag.String("model", "", "the .onnx model")
	in := flag.String("in", "", "input tensor file")
	out := flag.String("out", "", "output tensor file")
	flag.Parse()
	if err := run(*lib, *model, *in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "onnxrun:", err)
		os.Exit(1)
	}
}

func run(lib, model, inPath, outPath string) error {
	if model == "" || inPath == "" || outPath == "" {
		return errors.New("-model, -in and -out are required")
	}
	if _, err := onnx.Load(lib); err != nil {
		return err
	}
	shape, vals, err := readTensor(inPath)
	if err != nil {
		return err
	}
	ins, outs, err := ort.GetInputOutputInfo(model)
	if err != nil {
		return err
	}
	if len(ins) != 1 || len(outs) != 1 {
		return fmt.Errorf("want one input and one output, got %d and %d", len(ins), len(outs))
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return err
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		return err
	}
	s, err := ort.NewDynamicAdvancedSession(model, []string{ins[0].Name}, []string{outs[0].Name}, opts)
	if err != nil {
		return err
	}
	defer s.Destroy()
	x, err := ort.NewTensor(ort.NewShape(shape...), vals)
	if err != nil {
		return err
	}
	defer x.Destroy()
	res := []ort.Value{nil}
	if err := s.Run([]ort.Value{x}, res); err != nil {
		return err
	}
	defer res[0].Destroy()
	y, ok := res[0].(*ort.Tensor[float32])
	if !ok {
		return fmt.Errorf("output is %T, want float32", res[0])
	}
	return writeTensor(outPath, y.GetShape(), y.GetData())
}

func readTensor(path string) ([]int64, []float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var rank uint32
	if err := binary.Read(f, binary.LittleEndian, &rank); err != nil {
		return nil, nil, err
	}
	if rank == 0 || rank > 8 {
		return nil, nil, fmt.Errorf("%s: rank %d", path, rank)
	}
	shape := make([]int64, rank)
	if err := binary.Read(f, binary.LittleEndian, shape); err != nil {
		return nil, nil, err
	}
	n := int64(1)
	for _, d := range shape {
		if d <= 0 || d > 1<<24 {
			return nil, nil, fmt.Errorf("%s: dimension %d", path, d)
		}
		n *= d
	}
	if n > 1<<28 {
		return nil, nil, fmt.Errorf("%s: %d values", path, n)
	}
	vals := make([]float32, n)
	if err := binary.Read(f, binary.LittleEndian, vals); err != nil {
		return nil, nil, err
	}
	if _, err := f.Read(make([]byte, 1)); err != io.EOF {
		return nil, nil, fmt.Errorf("%s: trailing bytes", path)
	}
	return shape, vals, nil
}

func writeTensor(path string, shape ort.Shape, vals []float32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := binary.Write(f, binary.LittleEndian, uint32(len(shape))); err != nil {
		f.Close()
		return err
	}
	if err := binary.Write(f, binary.LittleEndian, []int64(shape)); err != nil {
		f.Close()
		return err
	}
	if err := binary.Write(f, binary.LittleEndian, vals); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
