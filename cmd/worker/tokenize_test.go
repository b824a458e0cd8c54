package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
)

func TestTokenizeOPT(t *testing.T) {
	dir := fixtures.Path("opt-tiny", "model")
	// "a photo of" as the OPT processor encodes it (golden c3, row 1): BOS "</s>" first.
	want := []int{2, 68, 280, 75, 82, 87, 82, 289}
	tests := []struct {
		name string
		args []string
		ids  [][]int
	}{
		{"flags first", []string{"--model", dir, "a photo of"}, [][]int{want}},
		{"flags after text", []string{"a photo of", "--model", dir, "a photo of"}, [][]int{want, want}},
		{"no special tokens", []string{"--model", dir, "--no-special-tokens", "a photo of"}, [][]int{want[1:]}},
		{"image token", []string{"--model", dir, "--no-special-tokens", "--", "<image>"}, [][]int{{400}}},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if err := runTokenize(context.Background(), tt.args, &out); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		sc := bufio.NewScanner(&out)
		row := 0
		for sc.Scan() {
			var line tokenizeLine
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("%s: line %q: %v", tt.name, sc.Text(), err)
			}
			if row >= len(tt.ids) {
				t.Fatalf("%s: more lines than texts", tt.name)
			}
			if !slices.Equal(line.IDs, tt.ids[row]) || len(line.Tokens) != len(line.IDs) {
				t.Errorf("%s: line %d = %+v, want ids %v", tt.name, row, line, tt.ids[row])
			}
			row++
		}
		if row != len(tt.ids) {
			t.Errorf("%s: %d lines, want %d", tt.name, row, len(tt.ids))
		}
	}
}

func TestTokenizeErrorsNameTheFile(t *testing.T) {
	empty := t.TempDir()
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, "tokenizer.json"), []byte(`{"model": `), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing", []string{"--model", empty, "x"}, empty},
		{"corrupt", []string{"--model", corrupt, "x"}, filepath.Join(corrupt, "tokenizer.json")},
		{"no model flag", []string{"x"}, "--model"},
		{"no text", []string{"--model", corrupt}, "TEXT"},
	}
	for _, tt := range tests {
		err := runTokenize(context.Background(), tt.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}
