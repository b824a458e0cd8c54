package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
)

func TestCaptionCommand(t *testing.T) {
	var out bytes.Buffer
	model := fixtures.Path("opt-tiny", "model")
	img := fixtures.Path("images", "astronaut.png")
	err := runCaption(context.Background(), []string{"--model", model, "--max-new-tokens", "12", "--backend", "go", "--dtype", "fp32", img}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var line struct {
		Image string `json:"image"`
		IDs   []int  `json:"ids"`
		Text  string `json:"text"`
	}
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	// opt-tiny golden c1: astronaut.png, no prompt, greedy, 12 new tokens.
	if want := "[15 15 15 218 129 259 259 259 259 259 15 15]"; fmt.Sprint(line.IDs) != want || line.Image != img {
		t.Fatalf("got %+v, want ids %s", line, want)
	}
}

func TestCaptionCommandReportsBadImagesAndGoesOn(t *testing.T) {
	var out bytes.Buffer
	model := fixtures.Path("opt-tiny", "model")
	bad := fixtures.Path("model", "config.json")
	good := fixtures.Path("images", "chelsea.png")
	err := runCaption(context.Background(), []string{"--model", model, "--max-new-tokens", "2", bad, good}, &out)
	if err == nil || !strings.Contains(err.Error(), "1 of 2") {
		t.Fatalf("error = %v, want one counting the bad image", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"error"`) || !strings.Contains(lines[0], "config.json") || !strings.Contains(lines[1], "chelsea.png") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestCaptionCommandFlagErrors(t *testing.T) {
	model := fixtures.Path("opt-tiny", "model")
	img := fixtures.Path("images", "astronaut.png")
	for _, args := range [][]string{
		{img},
		{"--model", model},
		{"--model", model, "--num-beams", "x", img},
		{"--model", model, "--batch-size", "0", img},
		{"--model", model, "--dtype", "fp16", img},
	} {
		if err := runCaption(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("runCaption(%q) succeeded", args)
		}
	}
}

// The README's sampling line: --do-sample takes no value, the image after
// the flags is captioned, and the same seed gives the same caption.
func TestCaptionCommandSamplingLineFromREADME(t *testing.T) {
	model := fixtures.Path("opt-tiny", "model")
	img := fixtures.Path("images", "astronaut.png")
	var first string
	for range 2 {
		var out bytes.Buffer
		err := runCaption(context.Background(), []string{"--model", model, "--max-new-tokens", "6", "--do-sample", "--temperature", "0.7", "--seed", "1", img}, &out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), `"image":"`+img+`"`) {
			t.Fatalf("output %s", out.String())
		}
		if first != "" && out.String() != first {
			t.Fatalf("same seed, different captions:\n%s%s", first, out.String())
		}
		first = out.String()
	}
}

func TestCaptionCommandPrintsInInputOrder(t *testing.T) {
	var out bytes.Buffer
	model := fixtures.Path("opt-tiny", "model")
	good1, bad, good2 := fixtures.Path("images", "chelsea.png"), fixtures.Path("model", "config.json"), fixtures.Path("images", "coffee.png")
	_ = runCaption(context.Background(), []string{"--model", model, "--max-new-tokens", "2", good1, bad, good2}, &out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "chelsea.png") || !strings.Contains(lines[1], `"error"`) || !strings.Contains(lines[2], "coffee.png") {
		t.Fatalf("lines out of input order:\n%s", out.String())
	}
}

// A prompt file gives each image its own prompt: the batch gives each
// image what it gets alone with that prompt.
func TestCaptionCommandPromptFile(t *testing.T) {
	model := fixtures.Path("t5-tiny", "model")
	imgs := []string{fixtures.Path("images", "chelsea.png"), fixtures.Path("images", "coffee.png")}
	prompts := []string{"Question: what is shown in the image? Answer:", "a photo of"}
	file := filepath.Join(t.TempDir(), "prompts.txt")
	if err := os.WriteFile(file, []byte(strings.Join(prompts, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var batched bytes.Buffer
	if err := runCaption(context.Background(), append([]string{"--model", model, "--max-new-tokens", "6", "--prompt-file", file}, imgs...), &batched); err != nil {
		t.Fatal(err)
	}
	var alone bytes.Buffer
	for i, img := range imgs {
		if err := runCaption(context.Background(), []string{"--model", model, "--max-new-tokens", "6", "--prompt", prompts[i], img}, &alone); err != nil {
			t.Fatal(err)
		}
	}
	if batched.String() != alone.String() {
		t.Fatalf("batched:\n%s\nalone:\n%s", batched.String(), alone.String())
	}
	err := runCaption(context.Background(), []string{"--model", model, "--prompt-file", file, imgs[0]}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "2 lines for 1 images") {
		t.Fatalf("error %v, want a line count mismatch", err)
	}
}

func TestCaptionBF16MatchesGolden(t *testing.T) {
	// The bf16 path (Go kernels, which run on any CPU) keeps the greedy
	// caption of the fixture: its logits move by under 1% (see
	// blip2.TestBF16Accuracy), less than the gaps between the top tokens.
	model := fixtures.Path("opt-tiny", "model")
	var out bytes.Buffer
	err := runCaption(context.Background(), []string{"--model", model, "--max-new-tokens", "12", "--dtype", "bf16", fixtures.Path("images", "astronaut.png")}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"ids":[15,15,15,218,129,259,259,259,259,259,15,15]`) {
		t.Fatalf("bf16 caption %s differs from the golden c1 ids", out.String())
	}
}
