package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"blipflow/model/engine"
	"blipflow/model/generate"
)

func init() {
	commands["caption"] = command{summary: "caption images (or answer a prompt about them)", run: runCaption}
}

// generationFlags registers the generation settings a user may override.
// Only flags given on the command line override generation_config.json.
func generationFlags(fs *flag.FlagSet) func() (generate.Config, error) {
	keys := map[string]string{
		"max-new-tokens": "max_new_tokens", "min-new-tokens": "min_new_tokens", "num-beams": "num_beams",
		"num-return-sequences": "num_return_sequences", "repetition-penalty": "repetition_penalty",
		"no-repeat-ngram-size": "no_repeat_ngram_size", "length-penalty": "length_penalty",
		"early-stopping": "early_stopping", "do-sample": "do_sample", "temperature": "temperature",
		"top-k": "top_k", "top-p": "top_p", "seed": "seed",
	}
	help := map[string]string{
		"max-new-tokens": "most new tokens per caption", "min-new-tokens": "fewest new tokens before EOS may end a caption",
		"num-beams": "beam search with this many beams (1: greedy)", "num-return-sequences": "captions returned per image",
		"repetition-penalty": "penalty for repeating tokens (1: off)", "no-repeat-ngram-size": "never repeat an n-gram of this size (0: off)",
		"length-penalty": "beam score length exponent", "early-stopping": "beam search stopping rule: true, false or never",
		"do-sample": "sample instead of taking the best token", "temperature": "sampling temperature",
		"top-k": "sample among the K best tokens", "top-p": "sample among the best tokens of this total probability",
		"seed": "seed that makes sampling repeatable",
	}
	for flagName := range keys {
		fs.String(flagName, "", help[flagName])
	}
	return func() (generate.Config, error) {
		var cfg generate.Config
		var err error
		fs.Visit(func(f *flag.Flag) {
			if key, ok := keys[f.Name]; ok && err == nil {
				if e := cfg.Set(key, f.Value.String()); e != nil {
					err = fmt.Errorf("--%s: %w", f.Name, e)
				}
			}
		})
		return cfg, err
	}
}

func runCaption(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("caption", flag.ContinueOnError)
	model := fs.String("model", "", "checkpoint folder or Hugging Face model name (required)")
	prompt := fs.String("prompt", "", "text the caption continues, e.g. \"Question: what is shown? Answer:\"")
	batch := fs.Int("batch-size", 8, "images encoded and decoded together")
	rt := runtimeFlags(fs)
	genConfig := generationFlags(fs)
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
	gen, err := genConfig()
	if err != nil {
		return err
	}
	e, err := openEngine(ctx, *model, rt)
	if err != nil {
		return err
	}
	defer e.Close()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	failed := 0
	for lo := 0; lo < len(images); lo += *batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := images[lo:min(lo+*batch, len(images))]
		var pixels []float32
		var names []string
		for _, path := range chunk {
			px, err := e.Images.File(path)
			if err != nil { // a bad image is reported and skipped; the rest go on
				failed++
				enc.Encode(map[string]string{"image": path, "error": err.Error()})
				continue
			}
			pixels = append(pixels, px...)
			names = append(names, path)
		}
		if len(names) == 0 {
			continue
		}
		caps, err := e.Caption(ctx, pixels, len(names), *prompt, gen)
		if err != nil {
			return err
		}
		for i, c := range caps {
			for k := range c.IDs {
				enc.Encode(struct {
					Image string `json:"image"`
					IDs   []int  `json:"ids"`
					Text  string `json:"text"`
				}{names[i], nonNil(c.IDs[k]), c.Texts[k]})
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be read (see their error lines)", failed, len(images))
	}
	return nil
}

// openEngine loads a checkpoint with the runtime the flags chose.
func openEngine(ctx context.Context, model string, rt *engine.Options) (*engine.Engine, error) {
	e, err := engine.Open(ctx, model, *rt)
	if err == nil {
		boundHeapGrowth()
	}
	return e, err
}
