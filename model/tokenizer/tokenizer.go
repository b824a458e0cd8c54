// Package tokenizer implements the Hugging Face tokenizers that BLIP-2
// checkpoints ship: byte-level BPE (GPT-2/OPT), Unigram with Metaspace
// (T5/SentencePiece) and WordPiece (BERT, the Q-Former's text side), loaded
// from tokenizer.json or from a GPT-2 style vocab.json + merges.txt pair.
// Encodings carry character offsets into the input, as the reference reports
// them.
package tokenizer

import (
	"errors"
	"fmt"
	"strings"
)

// Encoding is the tokenization of one text.
type Encoding struct {
	IDs    []int
	Tokens []string
	// Offsets[i] is the [start, end) range of characters (Unicode code
	// points) of the input that token i covers; tokens the post-processor
	// added cover [0, 0).
	Offsets [][2]int
}

func (e *Encoding) add(id int, token string, off [2]int) {
	e.IDs = append(e.IDs, id)
	e.Tokens = append(e.Tokens, token)
	e.Offsets = append(e.Offsets, off)
}

func (e *Encoding) append(o Encoding) {
	e.IDs = append(e.IDs, o.IDs...)
	e.Tokens = append(e.Tokens, o.Tokens...)
	e.Offsets = append(e.Offsets, o.Offsets...)
}

func (e Encoding) clone() Encoding {
	return Encoding{
		IDs:     append([]int(nil), e.IDs...),
		Tokens:  append([]string(nil), e.Tokens...),
		Offsets: append([][2]int(nil), e.Offsets...),
	}
}

// truncate keeps at most n tokens, from the start (side Right) or the end (Left).
func (e Encoding) truncate(n int, side Side) Encoding {
	if n < 0 || len(e.IDs) <= n {
		return e
	}
	lo, hi := 0, n
	if side == Left {
		lo, hi = len(e.IDs)-n, len(e.IDs)
	}
	return Encoding{IDs: e.IDs[lo:hi], Tokens: e.Tokens[lo:hi], Offsets: e.Offsets[lo:hi]}
}

// SpecialTokens are the ids of the tokenizer's named special tokens; -1
// where the checkpoint defines none.
type SpecialTokens struct {
	BOS, EOS, PAD, UNK int
}

// Tokenizer encodes text to token ids and decodes ids to text. It is safe
// for concurrent use.
type Tokenizer struct {
	normalizer    normalizer   // nil: none
	preTokenizer  preTokenizer // nil: the whole text is one word
	model         model
	postProcessor postProcessor // nil: no special tokens are added
	decoder       decoder       // nil: tokens are joined with spaces

	added          []AddedToken
	addedByContent map[string]int // content -> index in added
	addedByID      map[int]int    // id -> index in added
	rawMatcher     *addedMatcher  // tokens matched in the original text
	normMatcher    *addedMatcher  // tokens matched in the normalized text

	special SpecialTokens
	// cleanUpSpaces applies transformers' clean_up_tokenization after decoding.
	cleanUpSpaces bool
}

// Special returns the ids of the named special tokens.
func (t *Tokenizer) Special() SpecialTokens { return t.special }

// AddedTokens returns the tokens matched verbatim before the model runs.
func (t *Tokenizer) AddedTokens() []AddedToken { return append([]AddedToken(nil), t.added...) }

// TokenToID returns the id of a token string (added tokens first, then the
// model's vocabulary).
func (t *Tokenizer) TokenToID(token string) (int, bool) {
	if k, ok := t.addedByContent[token]; ok {
		return t.added[k].ID, true
	}
	return t.model.tokenToID(token)
}

// IDToToken returns the token string of an id.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if k, ok := t.addedByID[id]; ok {
		return t.added[k].Content, true
	}
	return t.model.idToToken(id)
}

// VocabSize is the number of ids in use: one more than the largest id of the
// model vocabulary or the added tokens.
func (t *Tokenizer) VocabSize() int {
	n := t.model.size()
	for _, a := range t.added {
		n = max(n, a.ID+1)
	}
	return n
}

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int) bool {
	k, ok := t.addedByID[id]
	return ok && t.added[k].Special
}

// Encode tokenizes text; with addSpecialTokens the checkpoint's
// post-processor wraps it in its special tokens (BOS, EOS, [CLS]...).
func (t *Tokenizer) Encode(text string, addSpecialTokens bool) (Encoding, error) {
	enc, err := t.encodeText(text)
	if err != nil {
		return Encoding{}, err
	}
	if addSpecialTokens {
		enc = t.postProcess(enc)
	}
	return enc, nil
}

func (t *Tokenizer) postProcess(enc Encoding) Encoding {
	if t.postProcessor == nil {
		return enc
	}
	return t.postProcessor.process(enc)
}

// specialTokenCount is how many tokens the post-processor adds.
func (t *Tokenizer) specialTokenCount() int {
	if t.postProcessor == nil {
		return 0
	}
	return t.postProcessor.addedCount()
}

// encodeText runs added-token extraction, normalization, pre-tokenization
// and the model, without special tokens.
func (t *Tokenizer) encodeText(text string) (Encoding, error) {
	var enc Encoding
	for _, piece := range t.rawMatcher.split(newSpan([]rune(text), 0)) {
		if piece.token >= 0 {
			t.addMatched(&enc, t.rawMatcher, piece)
			continue
		}
		s := piece.span
		if t.normalizer != nil {
			s = t.normalizer.normalize(s)
		}
		for _, sub := range t.normMatcher.split(s) {
			if sub.token >= 0 {
				t.addMatched(&enc, t.normMatcher, sub)
				continue
			}
			if err := t.encodeWords(&enc, sub.span); err != nil {
				return Encoding{}, err
			}
		}
	}
	return enc, nil
}

func (t *Tokenizer) addMatched(enc *Encoding, m *addedMatcher, p addedPiece) {
	tok := m.tokens[p.token]
	enc.add(tok.ID, tok.Content, p.span.offsets(0, len(p.span.text)))
}

func (t *Tokenizer) encodeWords(enc *Encoding, s span) error {
	words := []span{s}
	if t.preTokenizer != nil {
		words = t.preTokenizer.preTokenize(s)
	}
	for _, w := range words {
		toks, err := t.model.tokenize(w.text)
		if err != nil {
			return fmt.Errorf("word %q: %w", string(w.text), err)
		}
		for _, tok := range toks {
			enc.add(tok.id, tok.value, w.offsets(tok.start, tok.end))
		}
	}
	return nil
}

// Decode turns ids back into text. Unknown ids are skipped, as are special
// tokens when skipSpecialTokens is set. Bytes that are not valid UTF-8
// decode to U+FFFD.
func (t *Tokenizer) Decode(ids []int, skipSpecialTokens bool) string {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if skipSpecialTokens && t.IsSpecial(id) {
			continue
		}
		if tok, ok := t.IDToToken(id); ok {
			tokens = append(tokens, tok)
		}
	}
	var text string
	if t.decoder == nil {
		text = strings.Join(tokens, " ")
	} else {
		text = strings.Join(t.decoder.decode(tokens), "")
	}
	if t.cleanUpSpaces {
		text = cleanUpTokenization(text)
	}
	return text
}

// Side is where padding or truncation happens.
type Side int

const (
	// Right pads or truncates at the end.
	Right Side = iota
	// Left pads or truncates at the start.
	Left
)

// Padding says how a batch is padded.
type Padding int

const (
	// NoPadding leaves every sequence at its own length.
	NoPadding Padding = iota
	// PadLongest pads to the longest sequence of the batch.
	PadLongest
	// PadMaxLength pads to BatchOptions.MaxLength.
	PadMaxLength
)

// BatchOptions configure EncodeBatch.
type BatchOptions struct {
	// NoSpecialTokens leaves out the post-processor's special tokens.
	NoSpecialTokens bool
	Padding         Padding
	PadSide         Side
	// MaxLength is the padding length for PadMaxLength, and the length
	// sequences are cut to (special tokens included) when Truncate is set.
	MaxLength    int
	Truncate     bool
	TruncateSide Side
}

// Batch is a padded batch: AttentionMask is 1 for real tokens, 0 for padding.
type Batch struct {
	IDs           [][]int
	AttentionMask [][]int
}

// ErrNoPadToken is returned when padding is asked of a tokenizer without a
// pad token.
var ErrNoPadToken = errors.New("tokenizer has no pad token")

// EncodeBatch encodes texts and pads them as opts asks.
func (t *Tokenizer) EncodeBatch(texts []string, opts BatchOptions) (Batch, error) {
	if opts.Truncate && opts.MaxLength <= 0 {
		return Batch{}, fmt.Errorf("truncation needs a positive MaxLength, got %d", opts.MaxLength)
	}
	seqs := make([][]int, len(texts))
	for i, text := range texts {
		enc, err := t.encodeText(text)
		if err != nil {
			return Batch{}, fmt.Errorf("text %d: %w", i, err)
		}
		if opts.Truncate {
			keep := opts.MaxLength
			if !opts.NoSpecialTokens {
				keep -= t.specialTokenCount()
			}
			enc = enc.truncate(max(keep, 0), opts.TruncateSide)
		}
		if !opts.NoSpecialTokens {
			enc = t.postProcess(enc)
		}
		seqs[i] = enc.IDs
	}
	return t.Pad(seqs, opts.Padding, opts.PadSide, opts.MaxLength)
}

// Pad pads id sequences with the pad token: to the longest (PadLongest) or
// to maxLength (PadMaxLength; longer sequences are left as they are), on the
// given side.
func (t *Tokenizer) Pad(seqs [][]int, padding Padding, side Side, maxLength int) (Batch, error) {
	target := 0
	switch padding {
	case PadLongest:
		for _, s := range seqs {
			target = max(target, len(s))
		}
	case PadMaxLength:
		target = maxLength
	}
	b := Batch{IDs: make([][]int, len(seqs)), AttentionMask: make([][]int, len(seqs))}
	for i, s := range seqs {
		n := max(target-len(s), 0)
		if n > 0 && t.special.PAD < 0 {
			return Batch{}, ErrNoPadToken
		}
		ids := make([]int, 0, len(s)+n)
		mask := make([]int, 0, len(s)+n)
		if side == Left {
			ids, mask = appendRepeat(ids, t.special.PAD, n), appendRepeat(mask, 0, n)
		}
		ids, mask = append(ids, s...), appendRepeat(mask, 1, len(s))
		if side == Right {
			ids, mask = appendRepeat(ids, t.special.PAD, n), appendRepeat(mask, 0, n)
		}
		b.IDs[i], b.AttentionMask[i] = ids, mask
	}
	return b, nil
}

func appendRepeat(s []int, v, n int) []int {
	for range n {
		s = append(s, v)
	}
	return s
}
