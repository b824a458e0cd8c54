package tokenizer

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
)

type gpt2Cases struct {
	Cases []struct {
		Text               string   `json:"text"`
		IDs                []int    `json:"ids"`
		Tokens             []string `json:"tokens"`
		Offsets            [][2]int `json:"offsets"`
		Decoded            string   `json:"decoded"`
		DecodedSkipSpecial string   `json:"decoded_skip_special"`
	} `json:"cases"`
	DecodeCases []struct {
		IDs     []int  `json:"ids"`
		Decoded string `json:"decoded"`
	} `json:"decode_cases"`
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// gpt2Tokenizers loads the reference GPT-2 tokenizer both ways.
func gpt2Tokenizers(t testing.TB) map[string]*Tokenizer {
	t.Helper()
	fromJSON, err := LoadFile(fixtures.Path("tokenizer-gpt2", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	fromPair, err := LoadVocabMerges(fixtures.Path("tokenizer-gpt2", "encoder.json"), fixtures.Path("tokenizer-gpt2", "vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*Tokenizer{"tokenizer.json": fromJSON, "encoder.json+vocab.bpe": fromPair}
}

func TestGPT2Cases(t *testing.T) {
	var cases gpt2Cases
	readJSON(t, fixtures.Path("tokenizer-gpt2", "cases.json"), &cases)
	if len(cases.Cases) == 0 || len(cases.DecodeCases) == 0 {
		t.Fatal("no cases in cases.json")
	}
	for name, tok := range gpt2Tokenizers(t) {
		t.Run(name, func(t *testing.T) {
			for _, c := range cases.Cases {
				enc, err := tok.Encode(c.Text, false)
				if err != nil {
					t.Fatalf("%q: %v", c.Text, err)
				}
				if !slices.Equal(enc.IDs, c.IDs) {
					t.Errorf("%q ids:\n got %v\nwant %v", c.Text, enc.IDs, c.IDs)
				}
				if !slices.Equal(enc.Tokens, c.Tokens) {
					t.Errorf("%q tokens:\n got %q\nwant %q", c.Text, enc.Tokens, c.Tokens)
				}
				if !slices.Equal(enc.Offsets, c.Offsets) && !(len(enc.Offsets) == 0 && len(c.Offsets) == 0) {
					t.Errorf("%q offsets:\n got %v\nwant %v", c.Text, enc.Offsets, c.Offsets)
				}
				if got := tok.Decode(c.IDs, false); got != c.Decoded {
					t.Errorf("decode %v = %q, want %q", c.IDs, got, c.Decoded)
				}
				if got := tok.Decode(c.IDs, true); got != c.DecodedSkipSpecial {
					t.Errorf("decode skipping specials %v = %q, want %q", c.IDs, got, c.DecodedSkipSpecial)
				}
			}
			for _, c := range cases.DecodeCases {
				if got := tok.Decode(c.IDs, false); got != c.Decoded {
					t.Errorf("decode %v = %q, want %q", c.IDs, got, c.Decoded)
				}
			}
		})
	}
}

// lmGolden is the part of opt-tiny/t5-tiny golden.json about text.
type lmGolden struct {
	ImageTokenID int `json:"image_token_id"`
	Dims         struct {
		NumQueryTokens int `json:"num_query_tokens"`
	} `json:"dims"`
	Cases []struct {
		Name          string          `json:"name"`
		Text          json.RawMessage `json:"text"`
		InputIDs      [][]int         `json:"input_ids"`
		AttentionMask [][]int         `json:"attention_mask"`
		OutputIDs     [][]int         `json:"output_ids"`
		Decoded       []string        `json:"decoded"`
		TextInputIDs  [][]int         `json:"text_input_ids"`
	} `json:"cases"`
}

// texts decodes a case's text: null, a string or a list of strings.
func texts(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	if isNull(raw) {
		return nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		t.Fatalf("text %s: %v", raw, err)
	}
	return many
}

func TestTinyLMTokenizers(t *testing.T) {
	for _, name := range []string{"opt-tiny", "t5-tiny"} {
		t.Run(name, func(t *testing.T) {
			tok, err := LoadDir(fixtures.Path(name, "model"))
			if err != nil {
				t.Fatal(err)
			}
			var g lmGolden
			readJSON(t, fixtures.Path(name, "golden.json"), &g)
			checked := 0
			for _, c := range g.Cases {
				prompts := texts(t, c.Text)
				for row, text := range prompts {
					if text == "" {
						continue
					}
					// The text part: after the image tokens, without padding.
					var want []int
					for k, id := range c.InputIDs[row][g.Dims.NumQueryTokens:] {
						if c.AttentionMask[row][g.Dims.NumQueryTokens+k] == 1 {
							want = append(want, id)
						}
					}
					enc, err := tok.Encode(text, true)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(enc.IDs, want) {
						t.Errorf("%s %q:\n got %v\nwant %v", c.Name, text, enc.IDs, want)
					}
					checked++
				}
				if len(c.TextInputIDs) == 1 {
					enc, err := tok.Encode("a photo of a cat", true)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(enc.IDs, c.TextInputIDs[0]) {
						t.Errorf("%s: got %v, want %v", c.Name, enc.IDs, c.TextInputIDs[0])
					}
					checked++
				}
				for row, ids := range c.OutputIDs {
					if got := tok.Decode(ids, true); got != c.Decoded[row] {
						t.Errorf("%s decode %v = %q, want %q", c.Name, ids, got, c.Decoded[row])
					}
					checked++
				}
			}
			if checked < 10 {
				t.Fatalf("only %d checks ran", checked)
			}
		})
	}
}

func TestITMTokenizer(t *testing.T) {
	tok, err := LoadDir(fixtures.Path("itm-tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Texts         []string `json:"texts"`
		InputIDs      [][]int  `json:"input_ids"`
		AttentionMask [][]int  `json:"attention_mask"`
	}
	readJSON(t, fixtures.Path("itm-tiny", "golden.json"), &g)
	b, err := tok.EncodeBatch(g.Texts, BatchOptions{Padding: PadLongest})
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Texts {
		if !slices.Equal(b.IDs[i], g.InputIDs[i]) || !slices.Equal(b.AttentionMask[i], g.AttentionMask[i]) {
			t.Errorf("%q:\n got %v %v\nwant %v %v", g.Texts[i], b.IDs[i], b.AttentionMask[i], g.InputIDs[i], g.AttentionMask[i])
		}
	}
	if got, want := tok.Decode(g.InputIDs[0], true), g.Texts[0]; got != want {
		t.Errorf("decode = %q, want %q", got, want)
	}
}

func TestSpecialTokenIDs(t *testing.T) {
	tests := []struct {
		dir  string
		want SpecialTokens
	}{
		{"opt-tiny", SpecialTokens{BOS: 2, EOS: 2, PAD: 1, UNK: 3}},
		{"t5-tiny", SpecialTokens{BOS: -1, EOS: 1, PAD: 0, UNK: 2}},
		{"itm-tiny", SpecialTokens{BOS: -1, EOS: -1, PAD: 0, UNK: 1}},
	}
	for _, tt := range tests {
		tok, err := LoadDir(fixtures.Path(tt.dir, "model"))
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Special(); got != tt.want {
			t.Errorf("%s: special = %+v, want %+v", tt.dir, got, tt.want)
		}
		if id, ok := tok.TokenToID("<image>"); tt.dir != "itm-tiny" && (!ok || id != 400) {
			t.Errorf("%s: <image> = %d, %v; want 400", tt.dir, id, ok)
		}
	}
}

func TestEncodeBatchPaddingAndTruncation(t *testing.T) {
	tok, err := LoadDir(fixtures.Path("opt-tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"a photo of", "a"}
	one, _ := tok.Encode(texts[0], true)
	two, _ := tok.Encode(texts[1], true)
	bare, _ := tok.Encode(texts[0], false)
	pad := tok.Special().PAD
	// padded returns ids padded to n on one side, and its attention mask.
	padded := func(ids []int, n int, side Side) ([]int, []int) {
		fill := slices.Repeat([]int{pad}, n-len(ids))
		zeros := slices.Repeat([]int{0}, n-len(ids))
		ones := slices.Repeat([]int{1}, len(ids))
		if side == Left {
			return append(fill, ids...), append(zeros, ones...)
		}
		return append(slices.Clone(ids), fill...), append(ones, zeros...)
	}
	row := func(ids []int, n int, side Side) [2][]int {
		a, b := padded(ids, n, side)
		return [2][]int{a, b}
	}
	long := len(one.IDs)
	tests := []struct {
		name string
		opts BatchOptions
		want [][2][]int
	}{
		{"right", BatchOptions{Padding: PadLongest}, [][2][]int{row(one.IDs, long, Right), row(two.IDs, long, Right)}},
		{"left", BatchOptions{Padding: PadLongest, PadSide: Left}, [][2][]int{row(one.IDs, long, Left), row(two.IDs, long, Left)}},
		{"truncate right", BatchOptions{Truncate: true, MaxLength: 3}, [][2][]int{row(one.IDs[:3], 3, Right), row(two.IDs, len(two.IDs), Right)}},
		{"truncate left", BatchOptions{Truncate: true, MaxLength: 3, TruncateSide: Left},
			[][2][]int{row(append([]int{one.IDs[0]}, one.IDs[long-2:]...), 3, Right), row(two.IDs, len(two.IDs), Right)}},
		{"max length", BatchOptions{Padding: PadMaxLength, MaxLength: long + 2, NoSpecialTokens: true},
			[][2][]int{row(bare.IDs, long+2, Right), row(two.IDs[1:], long+2, Right)}},
	}
	for _, tt := range tests {
		b, err := tok.EncodeBatch(texts, tt.opts)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for i := range texts {
			if !slices.Equal(b.IDs[i], tt.want[i][0]) || !slices.Equal(b.AttentionMask[i], tt.want[i][1]) {
				t.Errorf("%s row %d: got %v %v, want %v %v", tt.name, i, b.IDs[i], b.AttentionMask[i], tt.want[i][0], tt.want[i][1])
			}
		}
	}
	gpt2 := gpt2Tokenizers(t)["tokenizer.json"]
	if _, err := gpt2.EncodeBatch([]string{"a b c", "a"}, BatchOptions{Padding: PadLongest}); err == nil {
		t.Error("padding without a pad token: want an error")
	}
}

func TestDecodeUTF8Lossy(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte("plain"), "plain"},
		{[]byte{0xe6, 0x97}, "\ufffd"},                   // truncated 3-byte sequence: one replacement
		{[]byte{0xe6, 0x97, 'a'}, "\ufffda"},             // truncated, then ASCII
		{[]byte{0x80, 0x80}, "\ufffd\ufffd"},             // lone continuations: one each
		{[]byte{0xf0, 0x9f, 0xa4}, "\ufffd"},             // truncated emoji
		{[]byte{0xed, 0xa0, 0x80}, "\ufffd\ufffd\ufffd"}, // surrogate: ED then two continuations
		{[]byte{0xc0, 0xaf}, "\ufffd\ufffd"},             // overlong
		{[]byte{0xf4, 0x90, 0x80, 0x80}, "\ufffd\ufffd\ufffd\ufffd"},
		{[]byte{'x', 0xe2, 0x82}, "x\ufffd"},
	}
	for _, tt := range tests {
		if got := decodeUTF8Lossy(tt.in); got != tt.want {
			t.Errorf("decodeUTF8Lossy(% x) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoadErrorsNameTheFault(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"not json", `{`, "parse"},
		{"no model", `{"added_tokens": []}`, "model: missing"},
		{"unknown model", `{"model": {"type": "Nope"}}`, `model: unsupported type "Nope"`},
		{"unknown normalizer", `{"normalizer": {"type": "Nope"}, "model": {"type": "WordLevel", "vocab": {"a": 0}}}`, "normalizer: unsupported"},
		{"bad merge", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`, `"b" is not in the vocabulary`},
		{"lookahead regex", `{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a(?!b)"}, "behavior": "Isolated"}, "model": {"type": "WordLevel", "vocab": {"a": 0}}}`, "pre_tokenizer: pattern: regex"},
	}
	for _, tt := range tests {
		_, err := Load([]byte(tt.json))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}
