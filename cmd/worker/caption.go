package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"blipflow/internal/genflags"

	"blipflow/model/engine"
)

func init() {
	commands["caption"] = command{summary: "caption images (or answer a prompt about them)", run: runCaption}
}

func runCaption(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("caption", flag.ContinueOnError)
	model := fs.String("model", "", "checkpoint folder or Hugging Face model name (required)")
	prompt := fs.String("prompt", "", "text the caption continues, e.g. \"Question: what is shown? Answer:\"")
	promptFile := fs.String("prompt-file", "", "file with one prompt per line, the Nth for the Nth image (instead of --prompt)")
	batch := fs.Int("batch-size", 8, "images encoded and decoded together")
	rt := runtimeFlags(fs)
	gen := genflags.Register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: worker caption --model DIR|NAME [flags] IMAGE...")
		fs.PrintDefaults()
	}
	images, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *model == "" || len(images) == 0 {
		fs.Usage()
		return errors.New("need --model and at least one image")
	}
	if *batch < 1 {
		return fmt.Errorf("--batch-size %d: must be positive", *batch)
	}
	overrides, err := gen.Config()
	if err != nil {
		return err
	}
	prompts, err := imagePrompts(*prompt, *promptFile, len(images))
	if err != nil {
		return err
	}
	e, err := openEngine(ctx, *model, rt)
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.Generation.Merge(overrides).Validate(); err != nil {
		return fmt.Errorf("generation settings (the checkpoint's with the flags): %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	failed := 0
	for lo := 0; lo < len(images); lo += *batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+*batch, len(images))
		// Each image's lines are printed in input order: a bad image's
		// error line where its captions would be.
		readErr := make([]error, hi-lo)
		var pixels []float32
		var rowPrompts []string
		for i, path := range images[lo:hi] {
			px, err := e.Images.File(path)
			if err != nil { // a bad image is reported and skipped; the rest go on
				failed++
				readErr[i] = err
				continue
			}
			pixels = append(pixels, px...)
			rowPrompts = append(rowPrompts, prompts[lo+i])
		}
		var caps []engine.Caption
		if len(rowPrompts) > 0 {
			if caps, _, err = e.CaptionEach(ctx, pixels, rowPrompts, overrides, false); err != nil {
				return err
			}
		}
		for i, path := range images[lo:hi] {
			if readErr[i] != nil {
				enc.Encode(map[string]string{"image": path, "error": readErr[i].Error()})
				continue
			}
			c := caps[0]
			caps = caps[1:]
			for k := range c.IDs {
				enc.Encode(struct {
					Image string `json:"image"`
					IDs   []int  `json:"ids"`
					Text  string `json:"text"`
				}{path, nonNil(c.IDs[k]), c.Texts[k]})
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be read (see their error lines)", failed, len(images))
	}
	return nil
}

// imagePrompts returns each image's prompt: the lines of file, one per
// image, or prompt for all of them.
func imagePrompts(prompt, file string, images int) ([]string, error) {
	if file == "" {
		prompts := make([]string, images)
		for i := range prompts {
			prompts[i] = prompt
		}
		return prompts, nil
	}
	if prompt != "" {
		return nil, errors.New("--prompt and --prompt-file exclude each other")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--prompt-file: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n"), "\n")
	if len(lines) != images {
		return nil, fmt.Errorf("--prompt-file %s: %d lines for %d images (want one prompt per image)", file, len(lines), images)
	}
	return lines, nil
}

// openEngine loads a checkpoint with the runtime the flags chose.
func openEngine(ctx context.Context, model string, rt *engine.Options) (*engine.Engine, error) {
	e, err := engine.Open(ctx, model, *rt)
	if err == nil {
		boundHeapGrowth()
	}
	return e, err
}
