package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"blipflow/model/blip2"
	"blipflow/model/tokenizer"
)

// Embedding kinds, as recorded in the tables' metadata.
const (
	// KindITCImage is the vision projection of each Q-Former query,
	// normalised per query (retrieval checkpoints).
	KindITCImage = "itc_image"
	// KindITCText is the text projection of the Q-Former's first text
	// token, normalised.
	KindITCText = "itc_text"
	// KindQFormerQuery is the Q-Former's query outputs, for checkpoints
	// without retrieval heads.
	KindQFormerQuery = "qformer_query"
)

// EmbeddingSpec describes the vectors an embedding call returns per input.
type EmbeddingSpec struct {
	Kind       string
	Vectors    int
	Dim        int
	Normalized bool
}

// ImageEmbedding describes this checkpoint's image embedding: ITC vectors
// where it has the retrieval heads, else the Q-Former's query outputs.
func (e *Engine) ImageEmbedding() EmbeddingSpec {
	c := e.Model.Config
	if e.Retrieval.RequireImage() == nil {
		return EmbeddingSpec{Kind: KindITCImage, Vectors: c.NumQueryTokens, Dim: e.Retrieval.Dim(), Normalized: true}
	}
	return EmbeddingSpec{Kind: KindQFormerQuery, Vectors: c.NumQueryTokens, Dim: c.QFormer.HiddenSize}
}

// TextEmbedding describes the text embedding, or says which tensors the
// checkpoint lacks for it.
func (e *Engine) TextEmbedding() (EmbeddingSpec, error) {
	if err := e.Retrieval.RequireText(); err != nil {
		return EmbeddingSpec{}, err
	}
	return EmbeddingSpec{Kind: KindITCText, Vectors: 1, Dim: e.Retrieval.Dim(), Normalized: true}, nil
}

// EmbedImages returns the image embedding of n images (pixels [n,3,H,W]),
// flattened [n·Vectors·Dim] as ImageEmbedding describes.
func (e *Engine) EmbedImages(ctx context.Context, pixels []float32, n int) ([]float32, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ImageEmbedding().Kind == KindQFormerQuery {
		img, err := e.Model.EncodeImages(ctx, pixels, n)
		if err != nil {
			return nil, err
		}
		return img.Queries, nil
	}
	return e.embedEncoded(ctx, nil, pixels, n)
}

// embedEncoded returns the image embedding, from img's query outputs when
// they are the embedding, else through the retrieval heads. The caller holds
// e.mu.
func (e *Engine) embedEncoded(ctx context.Context, img *blip2.ImageOutputs, pixels []float32, n int) ([]float32, error) {
	if img != nil && e.ImageEmbedding().Kind == KindQFormerQuery {
		return img.Queries, nil
	}
	out, err := e.Retrieval.EmbedImages(ctx, pixels, n)
	if err != nil {
		return nil, err
	}
	return out.Embeds, nil
}

// EmbedTexts returns the ITC text embedding of each text.
func (e *Engine) EmbedTexts(ctx context.Context, texts []string) ([][]float32, error) {
	if _, err := e.TextEmbedding(); err != nil {
		return nil, err
	}
	b, err := e.Tokenizer.EncodeBatch(texts, tokenizer.BatchOptions{Padding: tokenizer.PadLongest, PadSide: tokenizer.Right})
	if err != nil {
		return nil, fmt.Errorf("engine: tokenize: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out, err := e.Retrieval.EmbedTexts(ctx, b.IDs, b.AttentionMask)
	if err != nil {
		return nil, err
	}
	itc := out.ITC()
	w := len(itc) / len(texts)
	rows := make([][]float32, len(texts))
	for i := range rows {
		rows[i] = itc[i*w : (i+1)*w : (i+1)*w]
	}
	return rows, nil
}

// Fingerprint identifies a checkpoint folder's content: a hash of its
// config.json and, for each weight file, its name, size and first and last
// 64 KiB. The same checkpoint copied elsewhere keeps its fingerprint.
func Fingerprint(dir string) (string, error) {
	h := sha256.New()
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return "", fmt.Errorf("engine: fingerprint: %w", err)
	}
	h.Write(cfg)
	weights, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	sort.Strings(weights)
	for _, path := range weights {
		if err := hashEnds(h, path); err != nil {
			return "", fmt.Errorf("engine: fingerprint: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func hashEnds(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%s %d\n", filepath.Base(path), st.Size())
	const chunk = 64 << 10
	if _, err := io.Copy(h, io.LimitReader(f, chunk)); err != nil {
		return err
	}
	if st.Size() > 2*chunk {
		if _, err := f.Seek(-chunk, io.SeekEnd); err != nil {
			return err
		}
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
	}
	return nil
}

// Match returns, for each of n images (pixels [n,3,H,W]), the ITM head's
// probability that it matches text.
func (e *Engine) Match(ctx context.Context, pixels []float32, n int, text string) ([]float64, error) {
	if err := e.Retrieval.RequireMatch(); err != nil {
		return nil, err
	}
	b, err := e.Tokenizer.EncodeBatch([]string{text}, tokenizer.BatchOptions{Padding: tokenizer.PadLongest, PadSide: tokenizer.Right})
	if err != nil {
		return nil, fmt.Errorf("engine: tokenize: %w", err)
	}
	ids, mask := make([][]int, n), make([][]int, n)
	for i := range ids {
		ids[i], mask[i] = b.IDs[0], b.AttentionMask[0]
	}
	e.mu.Lock()
	logits, err := e.Retrieval.MatchLogits(ctx, pixels, ids, mask)
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = blip2.MatchProbability(logits[2*i : 2*i+2])
	}
	return out, nil
}
