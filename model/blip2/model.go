// Package blip2 computes BLIP-2 (Li et al., 2023): a frozen ViT image
// encoder, the Querying Transformer (Q-Former) that distils the image into a
// few query vectors, and a frozen language model (OPT or Flan-T5) that reads
// them as a prompt prefix. The networks are built as Gorgonia graphs over
// the custom ops of package nn.
package blip2

import (
	"context"
	"fmt"

	G "gorgonia.org/gorgonia"

	"blipflow/model/config"
	"blipflow/model/nn"
	"blipflow/model/safetensors"
)

// Model is a loaded BLIP-2 checkpoint.
type Model struct {
	Config  config.BLIP2
	Ops     nn.Ops
	Vision  *VisionEncoder
	QFormer *QFormer
	// Projection maps query outputs to the language model's width.
	Projection *nn.Linear
	// LM is the language model: *OPT or *T5. Nil for retrieval checkpoints.
	LM LanguageModel

	weights *safetensors.Dir
}

// LanguageModel is the part of BLIP-2 that reads the projected queries and
// the prompt.
type LanguageModel interface {
	// Embeddings returns the token embeddings table.
	Embeddings() *nn.Weight
}

// Load reads config.json and the safetensors weights of a checkpoint folder.
func Load(dir string, ops nn.Ops) (*Model, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	w, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	m, err := New(cfg, w, ops)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	m.weights = w
	return m, nil
}

// New builds a model from a configuration and a weight source (a checkpoint,
// or nn.RandomSource for a model of a given shape without its file).
func New(cfg config.BLIP2, src nn.Source, ops nn.Ops) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := nn.NewLoader(src)
	// The vision encoder's and the language model's matrices take the ops'
	// weight dtype; the Q-Former and the projection stay float32.
	big := l.Matrices(ops.WeightDType())
	m := &Model{Config: cfg, Ops: ops}
	var err error
	if m.Vision, err = loadVision(big.Sub("vision_model"), cfg.Vision); err != nil {
		return nil, err
	}
	if m.QFormer, err = loadQFormer(l, cfg); err != nil {
		return nil, err
	}
	if l.Has("language_projection.weight") {
		m.Projection = l.Linear("language_projection", cfg.QFormer.HiddenSize, cfg.TextHidden(), true)
		switch cfg.Text.ModelType {
		case config.OPT:
			m.LM, err = loadOPT(big.Sub("language_model"), cfg.Text)
		case config.T5:
			m.LM, err = loadT5(big.Sub("language_model"), cfg.Text)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// Close releases the memory-mapped weights.
func (m *Model) Close() error {
	if m.weights == nil {
		return nil
	}
	return m.weights.Close()
}

// ImageOutputs are the per-image results of the vision encoder and Q-Former.
type ImageOutputs struct {
	N int
	// Vision is last_hidden_state [N,T,Dv]; Pooled is pooler_output [N,Dv].
	Vision, Pooled []float32
	// Queries is the Q-Former's last_hidden_state [N,Q,Dq].
	Queries []float32
	// Projected is the language projection of Queries [N,Q,Dt] (nil for
	// retrieval checkpoints).
	Projected []float32
}

// EncodeImages runs the vision encoder and the Q-Former once on pixels
// [N,3,H,W]. A cancelled ctx stops it between layers.
func (m *Model) EncodeImages(ctx context.Context, pixels []float32, n int) (*ImageOutputs, error) {
	size := m.Config.Vision.ImageSize
	if len(pixels) != n*3*size*size {
		return nil, fmt.Errorf("blip2: %d pixel values for %d images of 3x%dx%d", len(pixels), n, size, size)
	}
	hidden, err := m.Vision.Encode(ctx, m.Ops, pixels, n)
	if err != nil {
		return nil, err
	}
	g := nn.NewGraph(m.Ops)
	vis := g.Input(hidden, n, NumPositions(m.Config.Vision), m.Config.Vision.HiddenSize)
	pooled := m.Vision.Pooled(g, vis)
	q := m.QFormer.Forward(g, vis)
	var proj *G.Node
	if m.Projection != nil {
		proj = g.Ops.Linear(q, m.Projection)
	}
	if err := g.Run(ctx); err != nil {
		return nil, err
	}
	out := &ImageOutputs{N: n, Vision: hidden}
	out.Pooled, _ = nn.Value(pooled)
	out.Queries, _ = nn.Value(q)
	if proj != nil {
		out.Projected, _ = nn.Value(proj)
	}
	return out, nil
}
