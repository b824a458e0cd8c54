package tokenizer

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"blipflow/internal/fixtures"
)

// FuzzLoad feeds arbitrary bytes as tokenizer.json: loading, and encoding
// and decoding with whatever loads, must never panic.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"opt-tiny", "t5-tiny", "itm-tiny"} {
		f.Add(shrunkTokenizerJSON(f, fixtures.Path(dir, "model", "tokenizer.json")))
	}
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}`))
	f.Add([]byte(`{"normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"}, "model": {"type": "Unigram", "vocab": [["a", 0]], "unk_id": 0}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Load(data)
		if err != nil {
			return
		}
		enc, err := tok.Encode("Question: what is <image> in the picture? Ünïcödé 日本", true)
		if err != nil {
			return
		}
		tok.Decode(enc.IDs, false)
		tok.Decode(enc.IDs, true)
	})
}

// FuzzRoundTrip checks decode(encode(s)) == s on the GPT-2 tokenizer for
// valid UTF-8, and that offsets stay within the text.
func FuzzRoundTrip(f *testing.F) {
	var cases gpt2Cases
	readJSON(f, fixtures.Path("tokenizer-gpt2", "cases.json"), &cases)
	for _, c := range cases.Cases {
		f.Add(c.Text)
	}
	tok := gpt2Tokenizers(f)["tokenizer.json"]
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		enc, err := tok.Encode(s, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Decode(enc.IDs, false); got != s {
			t.Fatalf("decode(encode(%q)) = %q", s, got)
		}
		n := utf8.RuneCountInString(s)
		for i, off := range enc.Offsets {
			if off[0] < 0 || off[0] > off[1] || off[1] > n {
				t.Fatalf("%q: token %d offsets %v outside [0, %d]", s, i, off, n)
			}
		}
	})
}

// shrunkTokenizerJSON returns a checkpoint's tokenizer.json with its
// vocabulary cut to the first ids: the fuzzer mutates small inputs far
// faster, and every normalizer, pre-tokenizer, post-processor and decoder
// setting is kept.
func shrunkTokenizerJSON(f *testing.F, path string) []byte {
	const keep = 48
	var file map[string]json.RawMessage
	readJSON(f, path, &file)
	var m map[string]any
	if err := json.Unmarshal(file["model"], &m); err != nil {
		f.Fatal(err)
	}
	switch vocab := m["vocab"].(type) {
	case map[string]any:
		for tok, id := range vocab {
			if id.(float64) >= keep {
				delete(vocab, tok)
			}
		}
		if merges, ok := m["merges"].([]any); ok {
			var kept []any
			for _, mg := range merges {
				pair := mg.([]any)
				a, b := pair[0].(string), pair[1].(string)
				if vocab[a] != nil && vocab[b] != nil && vocab[a+b] != nil {
					kept = append(kept, mg)
				}
			}
			m["merges"] = kept
		}
	case []any:
		m["vocab"] = vocab[:min(keep, len(vocab))]
	}
	model, err := json.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	file["model"] = model
	out, err := json.Marshal(file)
	if err != nil {
		f.Fatal(err)
	}
	return out
}
