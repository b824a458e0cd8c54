package processor

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/tokenizer"
)

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func load(t *testing.T, dir string) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.LoadDir(fixtures.Path(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestGoldenInputs checks input_ids and attention_mask of every opt-tiny and
// t5-tiny case that gave the processor text.
func TestGoldenInputs(t *testing.T) {
	for _, dir := range []string{"opt-tiny", "t5-tiny"} {
		t.Run(dir, func(t *testing.T) {
			var g struct {
				ImageTokenID int `json:"image_token_id"`
				Dims         struct {
					NumQueryTokens int `json:"num_query_tokens"`
				} `json:"dims"`
				Cases []struct {
					Name          string          `json:"name"`
					Text          json.RawMessage `json:"text"`
					InputIDs      [][]int         `json:"input_ids"`
					AttentionMask [][]int         `json:"attention_mask"`
					PaddingSide   *string         `json:"padding_side"`
				} `json:"cases"`
			}
			readJSON(t, fixtures.Path(dir, "golden.json"), &g)
			p := New(load(t, dir), g.Dims.NumQueryTokens, g.ImageTokenID)
			checked := 0
			for _, c := range g.Cases {
				if c.InputIDs == nil {
					continue
				}
				var prompts []string
				if err := json.Unmarshal(c.Text, &prompts); err != nil {
					var one *string
					if err := json.Unmarshal(c.Text, &one); err != nil {
						t.Fatalf("%s text: %v", c.Name, err)
					}
					prompts = []string{""} // the T5 no-prompt case was given ""
					if one != nil {
						prompts = []string{*one}
					}
				}
				opts := Options{}
				if c.PaddingSide != nil && *c.PaddingSide == "left" {
					opts.PadSide = tokenizer.Left
				}
				b, err := p.Encode(prompts, opts)
				if err != nil {
					t.Fatal(err)
				}
				for i := range prompts {
					if !slices.Equal(b.InputIDs[i], c.InputIDs[i]) || !slices.Equal(b.AttentionMask[i], c.AttentionMask[i]) {
						t.Errorf("%s row %d:\n got %v\n     %v\nwant %v\n     %v", c.Name, i, b.InputIDs[i], b.AttentionMask[i], c.InputIDs[i], c.AttentionMask[i])
					}
					checked++
				}
			}
			if checked < 8 {
				t.Fatalf("only %d rows checked", checked)
			}
		})
	}
}

// TestITMGolden checks the retrieval model's text input: no image tokens,
// WordPiece text padded on the right.
func TestITMGolden(t *testing.T) {
	var g struct {
		Texts         []string `json:"texts"`
		InputIDs      [][]int  `json:"input_ids"`
		AttentionMask [][]int  `json:"attention_mask"`
	}
	readJSON(t, fixtures.Path("itm-tiny", "golden.json"), &g)
	b, err := New(load(t, "itm-tiny"), 0, -1).Encode(g.Texts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(b.InputIDs, g.InputIDs, slices.Equal) || !slices.EqualFunc(b.AttentionMask, g.AttentionMask, slices.Equal) {
		t.Errorf("got %v %v\nwant %v %v", b.InputIDs, b.AttentionMask, g.InputIDs, g.AttentionMask)
	}
}

func TestNoPromptAndOptions(t *testing.T) {
	tok := load(t, "opt-tiny")
	p := New(tok, 3, 400)
	if got, want := p.ImageOnly(), []int{400, 400, 400, 2}; !slices.Equal(got, want) {
		t.Errorf("ImageOnly = %v, want %v", got, want)
	}
	if b, err := p.Encode(nil, Options{}); err != nil || len(b.InputIDs) != 0 {
		t.Errorf("Encode(nil) = %v, %v; want an empty batch", b, err)
	}
	b, err := p.Encode([]string{"a photo of", "a"}, Options{NoPadding: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.InputIDs[0]) == len(b.InputIDs[1]) || slices.Contains(b.AttentionMask[1], 0) {
		t.Errorf("NoPadding padded: %v %v", b.InputIDs, b.AttentionMask)
	}
	b, err = p.Encode([]string{"a photo of a cat"}, Options{MaxLength: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.InputIDs[0]) != 3+2 || b.InputIDs[0][3] != 2 {
		t.Errorf("MaxLength 2: got %v, want 3 image tokens, BOS and one text token", b.InputIDs[0])
	}
}
