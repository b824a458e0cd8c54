package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
