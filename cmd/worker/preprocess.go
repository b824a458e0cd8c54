package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"blipflow/model/imageproc"
	"blipflow/model/safetensors"
)

func init() {
	commands["preprocess"] = command{summary: "write the pixel_values tensor of images to a safetensors file", run: runPreprocess}
}

// runPreprocess turns images into the [N,3,H,W] pixel_values tensor with a
// checkpoint's image processor settings and writes it with safetensors.
func runPreprocess(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("preprocess", flag.ContinueOnError)
	modelDir := fs.String("model", "", "checkpoint folder with processor_config.json (image_processor block) or preprocessor_config.json")
	outPath := fs.String("out", "", "safetensors file to write pixel_values to")
	maxPixels := fs.Int("max-pixels", imageproc.DefaultMaxPixels, "refuse images whose header claims more pixels than this")
	images, err := parseArgs(fs, args, stdout, "worker preprocess --model DIR --out FILE.safetensors IMAGE...")
	if err != nil {
		return err
	}
	switch {
	case *modelDir == "":
		return errors.New("--model is required")
	case *outPath == "":
		return errors.New("--out is required")
	case len(images) == 0:
		return errors.New("no IMAGE given")
	}
	cfg, err := imageproc.LoadConfig(*modelDir)
	if err != nil {
		return err
	}
	proc, err := imageproc.New(cfg, imageproc.Options{MaxPixels: *maxPixels})
	if err != nil {
		return err
	}
	data, shape, err := proc.BatchFiles(images)
	if err != nil {
		return err
	}
	tensors := []safetensors.Tensor{{Name: "pixel_values", Shape: shape, Data: data}}
	if err := safetensors.WriteFile(*outPath, tensors, nil); err != nil {
		return fmt.Errorf("write %s: %w", *outPath, err)
	}
	fmt.Fprintf(stdout, "wrote pixel_values %v to %s\n", shape, *outPath)
	return nil
}
