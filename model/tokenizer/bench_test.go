package tokenizer

import (
	"strings"
	"testing"
)

// benchParagraph is a realistic caption-and-prompt style paragraph.
const benchParagraph = `Question: what is shown in the image? Answer: A man in a white space suit ` +
	`floats above the Earth, holding a tether attached to the shuttle's robotic arm. ` +
	`Behind him, the blue curve of the planet meets the black sky; clouds swirl over ` +
	`the ocean near the coast. The photo, taken in 1984 during mission STS-41-B, shows ` +
	`the first untethered spacewalk (the MMU jetpack is visible on his back). ` +
	`"It was a heck of a big leap for me," he later said — a nod to Armstrong's words.`

// BenchmarkEncode measures GPT-2 byte-level BPE encoding speed in tokens per
// second. The word cache is warm after the first iteration, as it is in a
// long-running worker.
func BenchmarkEncode(b *testing.B) {
	tok := gpt2Tokenizers(b)["tokenizer.json"]
	text := strings.Repeat(benchParagraph+"\n", 4)
	enc, err := tok.Encode(text, false)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := tok.Encode(text, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(enc.IDs))*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkEncodeCold measures encoding with an empty word cache every time
// (the BPE merge loop itself).
func BenchmarkEncodeCold(b *testing.B) {
	tok := gpt2Tokenizers(b)["tokenizer.json"]
	bpe := tok.model.(*bpeModel)
	enc, err := tok.Encode(benchParagraph, false)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		bpe.cache = newWordCache(bpe.cache.capacity)
		if _, err := tok.Encode(benchParagraph, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(enc.IDs))*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
