package generate

import "context"

// Decoder is a language model mid-generation, holding a KV cache per row.
//
// Generate calls Step once per generated position and Select between steps
// whenever the rows it needs differ from the rows the Decoder holds.
type Decoder interface {
	// Step feeds one token per current row and returns the logits for the next
	// token, one []float32 (len vocab) per row. Generate only reads the
	// returned slices and does not keep them after its next call. A
	// cancelled ctx may stop the step early with ctx's error.
	Step(ctx context.Context, tokens []int) ([][]float32, error)
	// Select rearranges the rows of the cache: afterwards row i holds what row
	// src[i] held. len(src) may be smaller (finished rows dropped, so they stop
	// costing work) or larger (beam expansion); an index may repeat.
	Select(src []int) error
}
