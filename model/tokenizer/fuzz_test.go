package tokenizer

import (
	"os"
	"testing"
	"unicode/utf8"

	"blipflow/internal/fixtures"
)

// FuzzLoad feeds arbitrary bytes as tokenizer.json: loading, and encoding
// and decoding with whatever loads, must never panic.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"itm-tiny"} {
		data, err := os.ReadFile(fixtures.Path(dir, "model", "tokenizer.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
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
