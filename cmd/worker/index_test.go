package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/schemas"
)

// indexFixture embeds the fixture images into two tables under one folder
// and indexes the folder.
func indexFixture(t *testing.T) (dir, ix string, fx *itmFixture) {
	t.Helper()
	fx = loadITMFixture(t)
	model := fixtures.Path("itm-tiny", "model")
	dir = filepath.Join(t.TempDir(), "job")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	paths := fx.imagePaths()
	half := len(paths) / 2
	embedTable(t, filepath.Join(dir, "a.parquet"), append([]string{"--model", model}, paths[:half]...)...)
	embedTable(t, filepath.Join(dir, "b.parquet"), append([]string{"--model", model}, paths[half:]...)...)
	ix = filepath.Join(t.TempDir(), "images.bfi")
	var out bytes.Buffer
	if err := runIndex(context.Background(), []string{"--table", dir, "--out", ix}, &out); err != nil {
		t.Fatal(err)
	}
	if want := "indexed " + strconv.Itoa(len(paths)) + " images from 2 tables"; !strings.Contains(out.String(), want) {
		t.Errorf("index prints %q, want %q", out.String(), want)
	}
	return dir, ix, fx
}

// TestIndexSearchMatchesExactScan: on the tiny retrieval checkpoint, the
// index returns the exact scan's ranking and scores for every fixture text,
// and each fixture image finds itself first.
func TestIndexSearchMatchesExactScan(t *testing.T) {
	dir, ix, fx := indexFixture(t)
	model := fixtures.Path("itm-tiny", "model")
	n := len(fx.Images)
	for _, top := range []int{1, 3, n} {
		k := strconv.Itoa(top)
		exact := runJSONLines[searchOutput](t, runSearch, append([]string{"--model", model, "--table", dir, "--top", k}, fx.Texts...)...)
		approx := runJSONLines[searchOutput](t, runSearch, append([]string{"--index", ix, "--top", k}, fx.Texts...)...)
		if !slices.EqualFunc(exact, approx, func(a, b searchOutput) bool {
			return a.Query == b.Query && slices.Equal(a.Results, b.Results)
		}) {
			t.Errorf("top %d: index gives\n%v\nexact scan\n%v", top, approx, exact)
		}
	}
	args := []string{"--index", ix, "--model", model, "--top", "2"}
	for _, p := range fx.imagePaths() {
		args = append(args, "--image", p)
	}
	lines := runJSONLines[searchOutput](t, runSearch, args...)
	if len(lines) != n {
		t.Fatalf("%d lines for %d images", len(lines), n)
	}
	for i, line := range lines {
		if line.Query != fx.imagePaths()[i] || len(line.Results) == 0 || line.Results[0].Input != line.Query {
			t.Errorf("image query %s: results %v, want itself first", line.Query, line.Results)
		}
	}
}

func TestIndexBadInput(t *testing.T) {
	dir := t.TempDir()
	itm, opt := fixtures.Path("itm-tiny", "model"), fixtures.Path("opt-tiny", "model")
	optTable := filepath.Join(dir, "opt.parquet")
	embedTable(t, optTable, "--model", opt, fixtures.Path("images", "chelsea.png"))
	itmTable := filepath.Join(dir, "itm.parquet")
	embedTable(t, itmTable, "--model", itm, fixtures.Path("images", "chelsea.png"))
	optIndex := filepath.Join(dir, "opt.bfi")
	if err := runIndex(context.Background(), []string{"--table", optTable, "--out", optIndex}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}

	// An empty table of the right model builds an empty index that answers
	// with no results.
	f, err := os.Open(itmTable)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	tab, err := schemas.OpenVectors(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	meta := tab.Meta()
	tab.Close()
	f.Close()
	var buf bytes.Buffer
	if err := schemas.WriteEmbeddings(&buf, meta, nil, nil); err != nil {
		t.Fatal(err)
	}
	emptyTable := filepath.Join(dir, "empty.parquet")
	if err := os.WriteFile(emptyTable, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	emptyIndex := filepath.Join(dir, "empty.bfi")
	if err := runIndex(context.Background(), []string{"--out", emptyIndex, emptyTable}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	lines := runJSONLines[searchOutput](t, runSearch, "--index", emptyIndex, "a cat")
	if len(lines) != 1 || len(lines[0].Results) != 0 {
		t.Errorf("empty index: %v", lines)
	}

	raw, err := os.ReadFile(emptyIndex)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.bfi")
	if err := os.WriteFile(truncated, raw[:len(raw)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func(context.Context, []string, *bytes.Buffer) error
		args []string
		want []string
	}{
		{"index of another model and dimension", doSearch, []string{"--index", optIndex, "--model", itm, "a cat"},
			[]string{optIndex, "opt-tiny", "itm-tiny", "32", "16"}},
		{"tables of two models", doIndex, []string{"--table", itmTable, "--table", optTable, "--out", filepath.Join(dir, "mixed.bfi")},
			[]string{itmTable, optTable, "opt-tiny", "itm-tiny"}},
		{"truncated index", doSearch, []string{"--index", truncated, "--model", itm, "a cat"}, []string{truncated, "truncated"}},
		{"not an index", doSearch, []string{"--index", itmTable, "--model", itm, "a cat"}, []string{itmTable, "not an index"}},
		{"image without index", doSearch, []string{"--model", itm, "--table", itmTable, "--image", "x.png"}, []string{"--image needs --index"}},
		{"no out", doIndex, []string{"--table", itmTable}, []string{"--out"}},
		{"no table", doIndex, []string{"--out", "x.bfi"}, []string{"--table"}},
	} {
		err := tc.run(context.Background(), tc.args, &bytes.Buffer{})
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "mixed.bfi")); !os.IsNotExist(err) {
		t.Errorf("a refused build left a file: %v", err)
	}
}

func doSearch(ctx context.Context, args []string, out *bytes.Buffer) error {
	return runSearch(ctx, args, out)
}
func doIndex(ctx context.Context, args []string, out *bytes.Buffer) error {
	return runIndex(ctx, args, out)
}
