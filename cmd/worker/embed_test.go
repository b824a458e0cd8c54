package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"blipflow/internal/fixtures"
	"blipflow/model/safetensors"
	"blipflow/schemas"
)

// itmFixture is what the command tests use of itm-tiny's golden data.
type itmFixture struct {
	Images        []string `json:"images"`
	Texts         []string `json:"texts"`
	InputIDs      [][]int  `json:"input_ids"`
	AttentionMask [][]int  `json:"attention_mask"`
	tensors       map[string][]float32
}

func loadITMFixture(t *testing.T) *itmFixture {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path("itm-tiny", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	fx := &itmFixture{tensors: map[string][]float32{}}
	if err := json.Unmarshal(raw, fx); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(fixtures.Path("itm-tiny", "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, name := range []string{"itc.image_embeds", "itc.text_embeds", "itc.logits_per_text", "itm.logits_per_image"} {
		d, _, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		fx.tensors[name] = slices.Clone(d)
	}
	return fx
}

// imagePaths returns the fixture images' paths.
func (fx *itmFixture) imagePaths() []string {
	var out []string
	for _, im := range fx.Images {
		out = append(out, fixtures.Path("images", im))
	}
	return out
}

// tolerance bounds the absolute difference of a command's output from the
// reference's, computed from its own pixel values: the fixture images are
// PNGs, decoded exactly, and the compared values are at most 1 in magnitude
// (unit vectors, probabilities).
const tolerance = 1e-4

func maxAbsDiff(t *testing.T, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	var worst float64
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
	}
	return worst
}

func runJSONLines[T any](t *testing.T, run func(context.Context, []string, io.Writer) error, args ...string) []T {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	var lines []T
	dec := json.NewDecoder(&out)
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, v)
	}
	return lines
}

func TestEmbedImagesAndTexts(t *testing.T) {
	fx := loadITMFixture(t)
	model := fixtures.Path("itm-tiny", "model")
	images := runJSONLines[struct {
		Input     string      `json:"input"`
		Embedding [][]float32 `json:"embedding"`
	}](t, runEmbed, append([]string{"--model", model, "--dtype", "fp32", "--batch-size", "2"}, fx.imagePaths()...)...)
	if len(images) != len(fx.Images) {
		t.Fatalf("%d lines for %d images", len(images), len(fx.Images))
	}
	var flat []float32
	for i, line := range images {
		if line.Input != fx.imagePaths()[i] || len(line.Embedding) != 8 || len(line.Embedding[0]) != 16 {
			t.Fatalf("line %d: input %q, %d vectors", i, line.Input, len(line.Embedding))
		}
		for _, v := range line.Embedding {
			flat = append(flat, v...)
		}
	}
	if d := maxAbsDiff(t, flat, fx.tensors["itc.image_embeds"]); d > tolerance {
		t.Errorf("image embeddings differ from itc.image_embeds by %.3g", d)
	} else {
		t.Logf("image embeddings from the files: max abs difference %.3g from itc.image_embeds", d)
	}

	texts := runJSONLines[struct {
		Input     string    `json:"input"`
		Embedding []float32 `json:"embedding"`
	}](t, runEmbed, append(fx.Texts, "--model", model, "--dtype", "fp32", "--text")...)
	flat = flat[:0]
	for i, line := range texts {
		if line.Input != fx.Texts[i] {
			t.Fatalf("line %d: input %q, want %q", i, line.Input, fx.Texts[i])
		}
		flat = append(flat, line.Embedding...)
	}
	if d := maxAbsDiff(t, flat, fx.tensors["itc.text_embeds"]); d > tolerance {
		t.Errorf("text embeddings differ from itc.text_embeds by %.3g", d)
	}
}

// scanTable reads a whole embeddings table.
func scanTable(t *testing.T, path string) (schemas.Meta, []string, [][]float32) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var vecs [][]float32
	meta, err := schemas.ScanEmbeddings(f, st.Size(), func(b schemas.EmbeddingBatch) error {
		keys = append(keys, b.Keys...)
		for _, v := range b.Vectors {
			vecs = append(vecs, slices.Clone(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return meta, keys, vecs
}

func TestEmbedWritesTable(t *testing.T) {
	fx := loadITMFixture(t)
	dir := t.TempDir()
	itm, opt := fixtures.Path("itm-tiny", "model"), fixtures.Path("opt-tiny", "model")
	itmID, _ := filepath.Abs(itm)
	optID, _ := filepath.Abs(opt)
	for _, tc := range []struct {
		name    string
		args    []string
		inputs  []string
		want    schemas.Meta
		compare []float32 // reference values of the rows, when there are some
		tol     float64
	}{
		{"itc images", []string{"--model", itm, "--dtype", "fp32"}, fx.imagePaths(),
			schemas.Meta{Model: itmID, EmbeddingKind: "itc_image", EmbeddingVectors: 8, EmbeddingDim: 16, Normalized: true},
			fx.tensors["itc.image_embeds"], tolerance},
		{"itc texts", []string{"--model", itm, "--dtype", "fp32", "--text"}, fx.Texts,
			schemas.Meta{Model: itmID, EmbeddingKind: "itc_text", EmbeddingVectors: 1, EmbeddingDim: 16, Normalized: true},
			fx.tensors["itc.text_embeds"], tolerance},
		{"query outputs of a captioning checkpoint", []string{"--model", opt, "--dtype", "fp32"}, fx.imagePaths()[:1],
			schemas.Meta{Model: optID, EmbeddingKind: "qformer_query", EmbeddingVectors: 8, EmbeddingDim: 32}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".parquet")
			var stdout bytes.Buffer
			args := append(append(slices.Clone(tc.args), "--out", out), tc.inputs...)
			if err := runEmbed(context.Background(), args, &stdout); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%s: %d ", out, len(tc.inputs)); !strings.HasPrefix(stdout.String(), want) {
				t.Errorf("summary %q, want it to start %q", stdout.String(), want)
			}
			meta, keys, vecs := scanTable(t, out)
			if time.Since(meta.CreatedAt) > time.Hour || meta.CreatedAt.After(time.Now()) {
				t.Errorf("created_at %v is not the time of writing", meta.CreatedAt)
			}
			got := schemas.Meta{Model: meta.Model, EmbeddingKind: meta.EmbeddingKind, EmbeddingVectors: meta.EmbeddingVectors,
				EmbeddingDim: meta.EmbeddingDim, Normalized: meta.Normalized}
			if got != tc.want {
				t.Errorf("metadata %+v, want %+v", got, tc.want)
			}
			if !slices.Equal(keys, tc.inputs) {
				t.Errorf("keys %q, want %q", keys, tc.inputs)
			}
			if tc.compare != nil {
				if d := maxAbsDiff(t, slices.Concat(vecs...), tc.compare); d > tc.tol {
					t.Errorf("table values differ from the reference by %.3g", d)
				}
			}
		})
	}
}

func TestEmbedErrors(t *testing.T) {
	dir := t.TempDir()
	itm, opt := fixtures.Path("itm-tiny", "model"), fixtures.Path("opt-tiny", "model")
	good := fixtures.Path("images", "chelsea.png")
	missing := filepath.Join(dir, "missing.png")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{good}, "--model"},
		{"no inputs", []string{"--model", itm}, "INPUT"},
		{"zero batch", []string{"--model", itm, "--batch-size", "0", good}, "--batch-size"},
		{"missing image", []string{"--model", itm, good, missing}, "1 of 2 images could not be read"},
		{"text on a captioning checkpoint", []string{"--model", opt, "--text", "a cat"}, "text_projection.weight"},
		{"not a checkpoint", []string{"--model", dir, good}, dir},
		{"unwritable table", []string{"--model", itm, "--out", filepath.Join(dir, "no", "such", "t.parquet"), good}, "t.parquet"},
	} {
		err := runEmbed(context.Background(), tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

// A bad image is an error line in its place (or left out of the table);
// the other images are embedded, and the command fails at the end.
func TestEmbedGoesOnAfterABadImage(t *testing.T) {
	itm := fixtures.Path("itm-tiny", "model")
	good1, bad, good2 := fixtures.Path("images", "chelsea.png"), fixtures.Path("itm-tiny", "model", "config.json"), fixtures.Path("images", "coffee.png")
	var out bytes.Buffer
	err := runEmbed(context.Background(), []string{"--model", itm, good1, bad, good2}, &out)
	if err == nil || !strings.Contains(err.Error(), "1 of 3") {
		t.Fatalf("error %v, want one counting the bad image", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "chelsea.png") || !strings.Contains(lines[0], `"embedding"`) ||
		!strings.Contains(lines[1], `"error"`) || !strings.Contains(lines[2], "coffee.png") || !strings.Contains(lines[2], `"embedding"`) {
		t.Fatalf("output:\n%.400s", out.String())
	}
	table := filepath.Join(t.TempDir(), "t.parquet")
	err = runEmbed(context.Background(), []string{"--model", itm, "--out", table, good1, bad, good2}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("no error for the bad image")
	}
	if _, keys, _ := scanTable(t, table); !slices.Equal(keys, []string{good1, good2}) {
		t.Fatalf("table keys %q, want the good images", keys)
	}
}
