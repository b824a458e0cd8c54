package main

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
)

type searchOutput struct {
	Query   string         `json:"query"`
	Results []searchResult `json:"results"`
}

type searchResult struct {
	Input string  `json:"input"`
	Score float32 `json:"score"`
}

// embedTable writes an embeddings table of inputs with 'worker embed --out'.
func embedTable(t *testing.T, path string, args ...string) {
	t.Helper()
	if err := runEmbed(context.Background(), append(args, "--out", path), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}

func TestSearchRanksAsReference(t *testing.T) {
	fx := loadITMFixture(t)
	model := fixtures.Path("itm-tiny", "model")
	table := filepath.Join(t.TempDir(), "images.parquet")
	embedTable(t, table, append([]string{"--model", model, "--dtype", "fp32"}, fx.imagePaths()...)...)

	n := len(fx.Images)
	perText := fx.tensors["itc.logits_per_text"] // [text][image]
	for _, top := range []int{1, 2, n, n + 5} {
		lines := runJSONLines[searchOutput](t, runSearch,
			append([]string{"--model", model, "--dtype", "fp32", "--table", table, "--top", strconv.Itoa(top)}, fx.Texts...)...)
		if len(lines) != len(fx.Texts) {
			t.Fatalf("top %d: %d lines for %d queries", top, len(lines), len(fx.Texts))
		}
		for q, line := range lines {
			if line.Query != fx.Texts[q] {
				t.Errorf("line %d is for %q, want %q", q, line.Query, fx.Texts[q])
			}
			if len(line.Results) != min(top, n) {
				t.Fatalf("top %d: %d results", top, len(line.Results))
			}
			prev := float32(math.Inf(1))
			for _, r := range line.Results {
				i := slices.Index(fx.imagePaths(), r.Input)
				if i < 0 {
					t.Fatalf("result %q is not an input", r.Input)
				}
				want := perText[q*n+i]
				if math.Abs(float64(r.Score-want)) > tolerance {
					t.Errorf("query %q, image %s: score %v, reference %v", line.Query, fx.Images[i], r.Score, want)
				}
				if r.Score > prev {
					t.Errorf("query %q: results not ranked best first", line.Query)
				}
				prev = r.Score
			}
			// Every image left out must score no better than the last one kept.
			for i := 0; i < n; i++ {
				if !containsInput(line.Results, fx.imagePaths()[i]) && perText[q*n+i] > prev+tolerance {
					t.Errorf("query %q: %s (reference %v) left out of the top %d", line.Query, fx.Images[i], perText[q*n+i], top)
				}
			}
		}
	}
}

// containsInput reports whether the results include input.
func containsInput(results []searchResult, input string) bool {
	for _, r := range results {
		if r.Input == input {
			return true
		}
	}
	return false
}

func TestSearchRefusesOtherTables(t *testing.T) {
	dir := t.TempDir()
	itm, opt := fixtures.Path("itm-tiny", "model"), fixtures.Path("opt-tiny", "model")
	optTable := filepath.Join(dir, "opt.parquet")
	embedTable(t, optTable, "--model", opt, fixtures.Path("images", "chelsea.png"))
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"table of another model and dimension", []string{"--model", itm, "--table", optTable, "a cat"},
			[]string{optTable, "opt-tiny", "itm-tiny", "32", "16"}},
		{"no model", []string{"--table", optTable, "a cat"}, []string{"--model"}},
		{"no table", []string{"--model", itm, "a cat"}, []string{"--table"}},
		{"no query", []string{"--model", itm, "--table", optTable}, []string{"QUERY"}},
		{"zero top", []string{"--model", itm, "--table", optTable, "--top", "0", "a cat"}, []string{"--top"}},
		{"missing table", []string{"--model", itm, "--table", filepath.Join(dir, "none.parquet"), "a cat"}, []string{"none.parquet"}},
		{"not a table", []string{"--model", itm, "--table", fixtures.Path("itm-tiny", "golden.json"), "a cat"}, []string{"golden.json"}},
		{"captioning checkpoint", []string{"--model", opt, "--table", optTable, "a cat"}, []string{"text_projection.weight"}},
	} {
		err := runSearch(context.Background(), tc.args, &bytes.Buffer{})
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, w)
			}
		}
	}
}
