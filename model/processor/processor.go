// Package processor is the text side of the BLIP-2 processor (transformers
// Blip2Processor): a prompt becomes num_query_tokens image tokens followed
// by the tokenizer's encoding of the prompt, and a batch is padded on the
// requested side between the image tokens and the text.
package processor

import (
	"fmt"

	"blipflow/model/tokenizer"
)

// Processor prepares language-model input ids for BLIP-2.
type Processor struct {
	tok            *tokenizer.Tokenizer
	numQueryTokens int
	imageTokenID   int
}

// New returns a processor that puts numQueryTokens copies of imageTokenID
// in front of every prompt (image_token_index in config.json, or the
// "<image>" added token). numQueryTokens 0 adds no image tokens, as for the
// retrieval model's Q-Former text input.
func New(tok *tokenizer.Tokenizer, numQueryTokens, imageTokenID int) *Processor {
	return &Processor{tok: tok, numQueryTokens: numQueryTokens, imageTokenID: imageTokenID}
}

// Options configure Encode.
type Options struct {
	// PadSide is where shorter prompts get their padding: Right (the
	// tokenizer default) or Left (for batched generation).
	PadSide tokenizer.Side
	// NoPadding leaves every row at its own length.
	NoPadding bool
	// MaxLength, when positive, truncates each prompt's text tokens
	// (special tokens included, image tokens not) to this many.
	MaxLength int
}

// Batch is the processor's output: one row per prompt. AttentionMask is 1
// for image and text tokens, 0 for padding.
type Batch struct {
	InputIDs      [][]int
	AttentionMask [][]int
}

// Encode prepares prompts. An empty prompt still gets the tokenizer's
// special tokens (T5: "</s>"), as in the reference; a nil or empty slice
// gives an empty batch (generation then starts from the image tokens and BOS).
func (p *Processor) Encode(prompts []string, opts Options) (Batch, error) {
	if len(prompts) == 0 {
		return Batch{}, nil
	}
	padding := tokenizer.PadLongest
	if opts.NoPadding {
		padding = tokenizer.NoPadding
	}
	text, err := p.tok.EncodeBatch(prompts, tokenizer.BatchOptions{
		Padding:   padding,
		PadSide:   opts.PadSide,
		MaxLength: opts.MaxLength,
		Truncate:  opts.MaxLength > 0,
	})
	if err != nil {
		return Batch{}, fmt.Errorf("processor: %w", err)
	}
	out := Batch{InputIDs: make([][]int, len(prompts)), AttentionMask: make([][]int, len(prompts))}
	for i := range prompts {
		ids := make([]int, 0, p.numQueryTokens+len(text.IDs[i]))
		mask := make([]int, 0, cap(ids))
		for range p.numQueryTokens {
			ids, mask = append(ids, p.imageTokenID), append(mask, 1)
		}
		out.InputIDs[i] = append(ids, text.IDs[i]...)
		out.AttentionMask[i] = append(mask, text.AttentionMask[i]...)
	}
	return out, nil
}

// ImageOnly returns the ids a captioning run without a prompt starts from:
// the image tokens followed by BOS where the tokenizer has one (what
// generate builds for decoder-only models).
func (p *Processor) ImageOnly() []int {
	ids := make([]int, 0, p.numQueryTokens+1)
	for range p.numQueryTokens {
		ids = append(ids, p.imageTokenID)
	}
	if bos := p.tok.Special().BOS; bos >= 0 {
		ids = append(ids, bos)
	}
	return ids
}
