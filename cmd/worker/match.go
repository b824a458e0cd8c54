package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
)

func init() {
	commands["match"] = command{summary: "print the probability that each image matches a text (ITM head)", run: runMatch}
}

// matchLine is one line of the match command's output.
type matchLine struct {
	Image       string  `json:"image"`
	Text        string  `json:"text"`
	Probability float64 `json:"probability"`
}

// runMatch scores each image against one text with the image-text matching
// head and prints the softmax probability of "match".
func runMatch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("match", flag.ContinueOnError)
	rt := runtimeFlags(fs)
	modelDir := fs.String("model", "", "image-text retrieval checkpoint folder")
	text := fs.String("text", "", "the text to match the images against")
	batchSize := fs.Int("batch-size", 8, "images per model call")
	images, err := parseArgs(fs, args, stdout, "worker match --model DIR --text TEXT [--batch-size B] IMAGE...")
	if err != nil {
		return err
	}
	switch {
	case *modelDir == "":
		return errors.New("--model is required")
	case *text == "":
		return errors.New("--text is required")
	case len(images) == 0:
		return errors.New("no IMAGE given")
	case *batchSize < 1:
		return fmt.Errorf("--batch-size %d: want at least 1", *batchSize)
	}
	e, err := openEmbeddingModel(ctx, *modelDir, rt)
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.Retrieval.RequireMatch(); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	failed := 0
	for lo := 0; lo < len(images); lo += *batchSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := images[lo:min(lo+*batchSize, len(images))]
		pixels, good, errs := e.readImages(batch)
		var probs []float64
		if good > 0 {
			if probs, err = e.Match(ctx, pixels, good, *text); err != nil {
				return err
			}
		}
		for i, img := range batch {
			if errs[i] != nil { // a bad image is reported in its place; the rest go on
				failed++
				if err := enc.Encode(map[string]string{"image": img, "error": errs[i].Error()}); err != nil {
					return err
				}
				continue
			}
			p := probs[0]
			probs = probs[1:]
			if err := enc.Encode(matchLine{Image: img, Text: *text, Probability: p}); err != nil {
				return err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be read (see their error lines)", failed, len(images))
	}
	return nil
}
