package engine

import (
	"context"
	"fmt"

	"blipflow/model/blip2"
	"blipflow/model/engine/continuous"
	"blipflow/model/generate"
)

// Continuous returns a continuous-batching scheduler over this engine:
// captions for images submitted from any number of goroutines (shards)
// share one decode batch. gen overrides the checkpoint's generation
// defaults; cfg.Generation is ignored. Close the scheduler when done.
func (e *Engine) Continuous(gen generate.Config, cfg continuous.Config) (*continuous.Scheduler, error) {
	if e.Model.LM == nil {
		return nil, fmt.Errorf("engine: %s has no language model to caption with", e.Dir)
	}
	cfg.Generation = e.Generation.Merge(gen)
	// The scheduler stops its work through Close; its model calls run
	// under a context that is never cancelled.
	return continuous.New(newScheduled(e, cfg.Generation), cfg)
}

// scheduled adapts the engine to continuous.Backend.
type scheduled struct {
	e   *Engine
	gen generate.Config
	ctx context.Context
}

func newScheduled(e *Engine, gen generate.Config) *scheduled {
	return &scheduled{e: e, gen: gen, ctx: context.Background()}
}

func (s *scheduled) Vocab() int { return s.e.Model.Config.Text.VocabSize }

// Encode runs the vision encoder and Q-Former once for the images; each
// image keeps its projected queries (and embedding when asked).
func (s *scheduled) Encode(images [][]float32, embed bool) ([]continuous.Encoded, error) {
	n := len(images)
	if n == 0 {
		return nil, nil
	}
	pixels := make([]float32, 0, n*len(images[0]))
	for i, px := range images {
		if len(px) != len(images[0]) {
			return nil, fmt.Errorf("engine: image %d has %d pixel values, image 0 has %d", i, len(px), len(images[0]))
		}
		pixels = append(pixels, px...)
	}
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	img, err := s.e.Model.EncodeImages(s.ctx, pixels, n)
	if err != nil {
		return nil, err
	}
	var emb []float32
	if embed {
		if emb, err = s.e.embedEncoded(s.ctx, img, pixels, n); err != nil {
			return nil, err
		}
	}
	out := make([]continuous.Encoded, n)
	proj := len(img.Projected) / n
	for i := range out {
		out[i].State = img.Projected[i*proj : (i+1)*proj : (i+1)*proj]
		if emb != nil {
			w := len(emb) / n
			out[i].Embedding = emb[i*w : (i+1)*w : (i+1)*w]
		}
	}
	return out, nil
}

// Start prefills the language model for the images with the prompt.
func (s *scheduled) Start(imgs []continuous.Encoded, prompt string) (continuous.Rows, [][]float32, [][]int, error) {
	n := len(imgs)
	texts := make([]string, n)
	for i := range texts {
		texts[i] = prompt
	}
	ids, mask, err := s.e.prompts(texts)
	if err != nil {
		return nil, nil, nil, err
	}
	out := &blip2.ImageOutputs{N: n}
	for i, img := range imgs {
		p, ok := img.State.([]float32)
		if !ok {
			return nil, nil, nil, fmt.Errorf("engine: encoded image %d is %T", i, img.State)
		}
		out.Projected = append(out.Projected, p...)
	}
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	rows, first, err := s.e.Model.StartRows(s.ctx, out, ids, mask, s.e.Model.DecodeCapacity(s.gen, len(ids[0])))
	if err != nil {
		return nil, nil, nil, err
	}
	return &lockedRows{Rows: rows, e: s.e, ctx: s.ctx}, first, rows.Prompts, nil
}

// lockedRows serialises model runs with the engine's other callers.
type lockedRows struct {
	*blip2.Rows
	e   *Engine
	ctx context.Context
}

func (r *lockedRows) Step(tokens []int) ([][]float32, error) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	return r.Rows.Step(r.ctx, tokens)
}

func (r *lockedRows) Admit(o continuous.Rows) error {
	other, ok := o.(*lockedRows)
	if !ok {
		return fmt.Errorf("engine: admitting rows of type %T", o)
	}
	return r.Rows.Admit(other.Rows)
}
