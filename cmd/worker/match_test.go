package main

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
)

func TestMatchProbabilities(t *testing.T) {
	fx := loadITMFixture(t)
	model := fixtures.Path("itm-tiny", "model")
	logits := fx.tensors["itm.logits_per_image"] // [pair][no match, match]
	paths := fx.imagePaths()
	for i, text := range fx.Texts {
		// The reference pairs image i with text i; the other images ride
		// along in the same batch to check batching keeps rows apart.
		lines := runJSONLines[matchLine](t, runMatch, "--model", model, "--dtype", "fp32", "--text", text, "--batch-size", "2", paths[0], paths[1], paths[2])
		if len(lines) != len(paths) {
			t.Fatalf("%d lines for %d images", len(lines), len(paths))
		}
		for j, line := range lines {
			if line.Image != paths[j] || line.Text != text {
				t.Errorf("line %d: %+v", j, line)
			}
			if line.Probability < 0 || line.Probability > 1 {
				t.Errorf("line %d: probability %v", j, line.Probability)
			}
		}
		want := 1 / (1 + math.Exp(float64(logits[2*i]-logits[2*i+1])))
		if got := lines[i].Probability; math.Abs(got-want) > tolerance {
			t.Errorf("%s with %q: probability %v, reference softmax %v", fx.Images[i], text, got, want)
		}
	}
}

func TestMatchErrors(t *testing.T) {
	itm, opt := fixtures.Path("itm-tiny", "model"), fixtures.Path("opt-tiny", "model")
	good := fixtures.Path("images", "chelsea.png")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"--text", "a cat", good}, "--model"},
		{"no text", []string{"--model", itm, good}, "--text"},
		{"no images", []string{"--model", itm, "--text", "a cat"}, "IMAGE"},
		{"zero batch", []string{"--model", itm, "--text", "a cat", "--batch-size", "0", good}, "--batch-size"},
		{"captioning checkpoint", []string{"--model", opt, "--text", "a cat", good}, "itm_head.weight"},
		{"missing image", []string{"--model", itm, "--text", "a cat", "nowhere.png"}, "1 of 1 images could not be read"},
	} {
		err := runMatch(context.Background(), tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestMatchGoesOnAfterABadImage(t *testing.T) {
	itm := fixtures.Path("itm-tiny", "model")
	good, bad := fixtures.Path("images", "chelsea.png"), fixtures.Path("itm-tiny", "model", "config.json")
	var out bytes.Buffer
	err := runMatch(context.Background(), []string{"--model", itm, "--text", "a cat", bad, good}, &out)
	if err == nil || !strings.Contains(err.Error(), "1 of 2") {
		t.Fatalf("error %v, want one counting the bad image", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"error"`) || !strings.Contains(lines[1], `"probability"`) {
		t.Fatalf("output:\n%s", out.String())
	}
}
