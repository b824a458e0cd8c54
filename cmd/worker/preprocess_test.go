package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/safetensors"
)

func TestPreprocessWritesPixelValues(t *testing.T) {
	out := filepath.Join(t.TempDir(), "pv.safetensors")
	images := []string{fixtures.Path("images", "chelsea.png"), fixtures.Path("images", "noise.png")}
	args := append([]string{"--model", fixtures.Path("opt-tiny", "model")}, images...)
	args = append(args, "--out", out) // flags after the images work too
	var stdout bytes.Buffer
	if err := runPreprocess(context.Background(), args, &stdout); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, shape, err := f.Float32("pixel_values")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shape, []int{2, 3, 224, 224}) {
		t.Fatalf("shape %v", shape)
	}
	ref, err := safetensors.Open(fixtures.Path("preprocess", "pixel_values.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	size := 3 * 224 * 224
	for i, key := range []string{"pixel_values.chelsea_png", "pixel_values.noise_png"} {
		want, _, err := ref.Float32(key)
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range got[i*size : (i+1)*size] {
			if d := v - want[j]; d > 0.02 || d < -0.02 {
				t.Fatalf("image %d value %d = %v, reference %v", i, j, v, want[j])
			}
		}
	}
}

func TestPreprocessErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.jpg")
	if err := os.WriteFile(bad, []byte("\xff\xd8\xff\xe0 truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	model := fixtures.Path("opt-tiny", "model")
	out := filepath.Join(dir, "out.safetensors")
	good := fixtures.Path("images", "chelsea.png")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad image", []string{"--model", model, "--out", out, good, bad}, bad},
		{"no model", []string{"--out", out, good}, "--model"},
		{"no out", []string{"--model", model, good}, "--out"},
		{"no images", []string{"--model", model, "--out", out}, "IMAGE"},
		{"model without config", []string{"--model", dir, "--out", out, good}, dir},
	} {
		err := runPreprocess(context.Background(), tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output written despite errors: %v", err)
	}
}
