package blip2model

import (
	"context"
	"fmt"

	"blipflow/model/engine"
	"blipflow/model/engine/continuous"
	"blipflow/model/generate"
	"blipflow/pipeline"
)

// Continuous runs a BLIP-2 checkpoint with continuous batching: the Run
// calls of every shard the worker holds feed one scheduler, whose decode
// batch stays full while any shard has images left (see package
// continuous).
type Continuous struct {
	Model
	s *continuous.Scheduler
}

var _ pipeline.Model = (*Continuous)(nil)

// ContinuousLoader returns a pipeline.ModelLoader like Loader whose models
// schedule with cfg (cfg.Generation is taken from gen and the checkpoint).
func ContinuousLoader(opts engine.Options, gen generate.Config, cfg continuous.Config) pipeline.ModelLoader {
	return func(ctx context.Context, ref string) (pipeline.Model, error) {
		e, err := engine.Open(ctx, ref, opts)
		if err != nil {
			return nil, err
		}
		m, err := NewContinuous(e, gen, cfg)
		if err != nil {
			e.Close()
			return nil, err
		}
		return m, nil
	}
}

// New wraps an open engine as a plain-batching Model.
func New(e *engine.Engine, gen generate.Config) *Model {
	return &Model{e: e, id: e.Name + "@" + e.Fingerprint, gen: gen}
}

// NewContinuous wraps an open engine.
func NewContinuous(e *engine.Engine, gen generate.Config, cfg continuous.Config) (*Continuous, error) {
	s, err := e.Continuous(gen, cfg)
	if err != nil {
		return nil, err
	}
	return &Continuous{Model: *New(e, gen), s: s}, nil
}

// Run submits the batch's images to the shared scheduler and waits for
// them. An image's failure is its row's error; an error fails the batch
// only when the scheduler itself stops.
func (m *Continuous) Run(ctx context.Context, task pipeline.Task, batch []pipeline.Image) ([]pipeline.Result, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	if !task.Caption { // nothing to decode: a plain batch is as good
		return m.Model.Run(ctx, task, batch)
	}
	reqs := make([]continuous.Request, len(batch))
	for i, img := range batch {
		if len(img.Pixels) != len(batch[0].Pixels) {
			return nil, fmt.Errorf("blip2model: image %q has %d pixel values, want %d", img.Key, len(img.Pixels), len(batch[0].Pixels))
		}
		reqs[i] = continuous.Request{Pixels: img.Pixels, Prompt: task.Prompt, Caption: true, Embed: task.Embed}
	}
	res, err := m.s.Submit(ctx, reqs)
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.Result, len(batch))
	for i, r := range res {
		if r.Err != nil {
			out[i].Err = r.Err
			continue
		}
		ids := make([]int32, len(r.IDs))
		for k, id := range r.IDs {
			ids[k] = int32(id)
		}
		out[i].TokenIDs = [][]int32{ids}
		out[i].Captions = []string{m.e.Tokenizer.Decode(r.IDs, true)}
		out[i].Embedding = r.Embedding
	}
	return out, nil
}

// Close drains the scheduler and releases the weights.
func (m *Continuous) Close() error {
	m.s.Close()
	return m.Model.Close()
}
