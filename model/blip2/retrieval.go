package blip2

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	G "gorgonia.org/gorgonia"

	"blipflow/model/nn"
)

// ErrNoRetrievalHeads is wrapped by the errors of Retrieval methods that need
// tensors the checkpoint lacks (a captioning checkpoint has no projections,
// text embeddings or ITM head).
var ErrNoRetrievalHeads = errors.New("checkpoint has no image-text retrieval heads")

// Retrieval is the image-text retrieval part of a BLIP-2 checkpoint
// (Blip2ForImageTextRetrieval): the Q-Former's text embeddings, the ITC
// projections into the shared embedding space and the ITM head. It reuses
// the Model's vision encoder and Q-Former.
type Retrieval struct {
	m *Model
	// words and positions embed Q-Former text (embeddings.*).
	words, positions *nn.Weight
	// visionProj and textProj map Q-Former outputs to the ITC space.
	visionProj, textProj *nn.Linear
	// itm classifies the joint query outputs as no-match / match.
	itm *nn.Linear
	// missing lists, per capability, the tensors the checkpoint lacks.
	missing map[retrievalPart][]string
}

type retrievalPart int

const (
	partImage retrievalPart = iota // ITC image embeddings
	partText                       // ITC text embeddings
	partMatch                      // ITM head
)

// Retrieval returns the retrieval heads of a checkpoint loaded with Load.
// Heads the checkpoint lacks are reported, naming the tensors, when a method
// needs them.
func (m *Model) Retrieval() (*Retrieval, error) {
	if m.weights == nil {
		return nil, errors.New("blip2: retrieval heads need a model loaded from a checkpoint folder")
	}
	return NewRetrieval(m, m.weights)
}

// NewRetrieval loads the retrieval heads of m from src (the checkpoint m
// was built from).
func NewRetrieval(m *Model, src nn.Source) (*Retrieval, error) {
	c := m.Config
	d, p := c.QFormer.HiddenSize, c.ImageTextHiddenSize
	r := &Retrieval{m: m, missing: map[retrievalPart][]string{}}
	need := func(name string, parts ...retrievalPart) bool {
		if src.Has(name) {
			return true
		}
		for _, part := range parts {
			r.missing[part] = append(r.missing[part], name)
		}
		return false
	}
	l := nn.NewLoader(src)
	words := need("embeddings.word_embeddings.weight", partText, partMatch)
	positions := need("embeddings.position_embeddings.weight", partText, partMatch)
	if words && positions {
		r.words = l.Tensor("embeddings.word_embeddings.weight", c.QFormer.VocabSize, d)
		r.positions = l.Tensor("embeddings.position_embeddings.weight", c.QFormer.MaxPositionEmbeddings, d)
	}
	for i := range m.QFormer.layers {
		if m.QFormer.layers[i].textFFN == nil {
			need(fmt.Sprintf("qformer.encoder.layer.%d.intermediate.dense.weight", i), partText, partMatch)
		}
	}
	linear := func(name string, out int, part retrievalPart) *nn.Linear {
		w, b := need(name+".weight", part), need(name+".bias", part)
		if !w || !b {
			return nil
		}
		return l.Linear(name, d, out, true)
	}
	r.visionProj = linear("vision_projection", p, partImage)
	r.textProj = linear("text_projection", p, partText)
	r.itm = linear("itm_head", 2, partMatch)
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("blip2: retrieval heads: %w", err)
	}
	return r, nil
}

// Dim is the width of the ITC embedding space (image_text_hidden_size).
func (r *Retrieval) Dim() int { return r.m.Config.ImageTextHiddenSize }

// NumQueries is the number of ITC vectors per image.
func (r *Retrieval) NumQueries() int { return r.m.Config.NumQueryTokens }

// RequireImage reports, naming the missing tensors, when the checkpoint
// cannot compute ITC image embeddings.
func (r *Retrieval) RequireImage() error { return r.require(partImage, "image embeddings") }

// RequireText reports, naming the missing tensors, when the checkpoint
// cannot compute ITC text embeddings.
func (r *Retrieval) RequireText() error { return r.require(partText, "text embeddings") }

// RequireMatch reports, naming the missing tensors, when the checkpoint
// has no image-text matching head.
func (r *Retrieval) RequireMatch() error { return r.require(partMatch, "image-text matching") }

func (r *Retrieval) require(part retrievalPart, what string) error {
	if names := r.missing[part]; len(names) > 0 {
		return fmt.Errorf("blip2: %s: %w: missing %s", what, ErrNoRetrievalHeads, strings.Join(names, ", "))
	}
	return nil
}

// ImageEmbeddings are the ITC outputs of a batch of images.
type ImageEmbeddings struct {
	N int
	// Vision is the vision encoder's last_hidden_state [N,T,Dv].
	Vision []float32
	// Embeds is vision_projection of every query output, L2-normalised per
	// query: [N,Q,P].
	Embeds []float32
}

// EmbedImages computes the ITC image embeddings of pixels [N,3,H,W]
// (Blip2VisionModelWithProjection's image_embeds).
func (r *Retrieval) EmbedImages(ctx context.Context, pixels []float32, n int) (*ImageEmbeddings, error) {
	if err := r.RequireImage(); err != nil {
		return nil, err
	}
	out, err := r.m.EncodeImages(ctx, pixels, n)
	if err != nil {
		return nil, err
	}
	g := nn.NewGraph(r.m.Ops)
	q := g.Input(out.Queries, n, r.NumQueries(), r.m.Config.QFormer.HiddenSize)
	proj := g.Ops.Linear(q, r.visionProj)
	if err := g.Run(ctx); err != nil {
		return nil, err
	}
	emb, _ := nn.Value(proj)
	normalizeRows(emb, r.Dim())
	return &ImageEmbeddings{N: n, Vision: out.Vision, Embeds: emb}, nil
}

// TextEmbeddings are the outputs of the Q-Former's text-only pass.
type TextEmbeddings struct {
	N, T int
	// Hidden is the Q-Former's last_hidden_state [N,T,D].
	Hidden []float32
	// Tokens is text_projection of every position, L2-normalised:
	// [N,T,P] (Blip2TextModelWithProjection's text_embeds).
	Tokens []float32
}

// ITC returns the ITC text embedding of every row, that of its first
// ([CLS]) token: [N,P].
func (e *TextEmbeddings) ITC() []float32 {
	p := len(e.Tokens) / (e.N * e.T)
	out := make([]float32, 0, e.N*p)
	for i := 0; i < e.N; i++ {
		out = append(out, e.Tokens[i*e.T*p:(i*e.T+1)*p]...)
	}
	return out
}

// EmbedTexts runs the Q-Former over WordPiece ids [N,T] (with [CLS] first)
// and their attention mask, without queries or image.
func (r *Retrieval) EmbedTexts(ctx context.Context, ids, mask [][]int) (*TextEmbeddings, error) {
	if err := r.RequireText(); err != nil {
		return nil, err
	}
	g := nn.NewGraph(r.m.Ops)
	text, err := r.embedText(g, ids, mask)
	if err != nil {
		return nil, err
	}
	n, t := len(ids), len(ids[0])
	h := r.m.QFormer.Run(g, QFormerInput{Text: text, Mask: flatten(mask), NoQueries: true, N: n})
	proj := g.Ops.Linear(h, r.textProj)
	if err := g.Run(ctx); err != nil {
		return nil, err
	}
	out := &TextEmbeddings{N: n, T: t}
	out.Hidden, _ = nn.Value(h)
	out.Tokens, _ = nn.Value(proj)
	normalizeRows(out.Tokens, r.Dim())
	return out, nil
}

// MatchLogits runs the ITM head on pairs: image i of pixels [N,3,H,W] with
// text row i of ids [N,T]. The queries and the text share one Q-Former
// pass, the queries also attending to the image; the head's two logits
// (no match, match) are averaged over the query positions: [N,2].
func (r *Retrieval) MatchLogits(ctx context.Context, pixels []float32, ids, mask [][]int) ([]float32, error) {
	if err := r.RequireMatch(); err != nil {
		return nil, err
	}
	n := len(ids)
	size := r.m.Config.Vision.ImageSize
	if len(pixels) != n*3*size*size {
		return nil, fmt.Errorf("blip2: %d pixel values for %d image-text pairs of 3x%dx%d images", len(pixels), n, size, size)
	}
	hidden, err := r.m.Vision.Encode(ctx, r.m.Ops, pixels, n)
	if err != nil {
		return nil, err
	}
	g := nn.NewGraph(r.m.Ops)
	text, err := r.embedText(g, ids, mask)
	if err != nil {
		return nil, err
	}
	vis := g.Input(hidden, n, NumPositions(r.m.Config.Vision), r.m.Config.Vision.HiddenSize)
	h := r.m.QFormer.Run(g, QFormerInput{Image: vis, Text: text, Mask: flatten(mask), N: n})
	q := r.NumQueries()
	logits := g.Ops.Linear(steps(g, h, 0, q), r.itm)
	if err := g.Run(ctx); err != nil {
		return nil, err
	}
	perQuery, _ := nn.Value(logits)
	out := make([]float32, 2*n)
	for i := 0; i < n; i++ {
		for k := 0; k < 2; k++ {
			var sum float32
			for j := 0; j < q; j++ {
				sum += perQuery[(i*q+j)*2+k]
			}
			out[i*2+k] = sum / float32(q)
		}
	}
	return out, nil
}

// MatchProbability is the softmax probability of the ITM head's "match"
// logit, from a row of MatchLogits.
func MatchProbability(logits []float32) float64 {
	a, b := float64(logits[0]), float64(logits[1])
	return 1 / (1 + math.Exp(a-b))
}

// embedText adds the Q-Former's word and absolute position embeddings
// (positions 0..T-1) of ids: [N,T,D]. The Q-Former's input layer norm is
// applied later, over the queries and text together.
func (r *Retrieval) embedText(g *nn.Graph, ids, mask [][]int) (*G.Node, error) {
	if err := checkTokenBatch(ids, mask); err != nil {
		return nil, err
	}
	n, t := len(ids), len(ids[0])
	if max := r.m.Config.QFormer.MaxPositionEmbeddings; t > max {
		return nil, fmt.Errorf("blip2: text of %d tokens exceeds the Q-Former's %d positions", t, max)
	}
	vocab := r.m.Config.QFormer.VocabSize
	positions := make([]int, 0, n*t)
	for _, row := range ids {
		for j, id := range row {
			if id < 0 || id >= vocab {
				return nil, fmt.Errorf("blip2: token id %d outside the Q-Former's vocabulary of %d", id, vocab)
			}
			positions = append(positions, j)
		}
	}
	words := g.Ops.Embed(g.InputInts(flatten(ids), n, t), r.words)
	return g.Add(words, g.Ops.Embed(g.InputInts(positions, n, t), r.positions)), nil
}

// normalizeRows scales every run of dim values to unit L2 norm, dividing by
// max(norm, 1e-12) as torch's normalize does.
func normalizeRows(x []float32, dim int) {
	for o := 0; o+dim <= len(x); o += dim {
		row := x[o : o+dim]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		norm := float32(max(math.Sqrt(ss), 1e-12))
		for k := range row {
			row[k] /= norm
		}
	}
}
