// Package blip2model adapts a loaded BLIP-2 checkpoint (package engine) to
// the pipeline's Model interface, so workers caption and embed with it.
package blip2model

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"blipflow/model/engine"
	"blipflow/model/generate"
	"blipflow/pipeline"
)

// Model runs a BLIP-2 checkpoint for the pipeline.
type Model struct {
	e   *engine.Engine
	id  string
	gen generate.Config
	// parsed caches the generation settings of each task's Generation.
	parsed sync.Map
}

var _ pipeline.Model = (*Model)(nil)

// Loader returns a pipeline.ModelLoader that opens checkpoints with opts and
// generates with gen over the checkpoint's defaults.
func Loader(opts engine.Options, gen generate.Config) pipeline.ModelLoader {
	return func(ctx context.Context, ref string) (pipeline.Model, error) {
		e, err := engine.Open(ctx, ref, opts)
		if err != nil {
			return nil, err
		}
		if err := e.Generation.Merge(gen).Validate(); err != nil {
			e.Close()
			return nil, fmt.Errorf("generation settings (%s's with the overrides): %w", ref, err)
		}
		return &Model{e: e, id: e.Name + "@" + e.Fingerprint, gen: gen}, nil
	}
}

// Fingerprint identifies the checkpoint's content (see engine.Fingerprint).
func (m *Model) Fingerprint() string { return m.e.Fingerprint }

// ID names the model as the user gave it and, as its revision, the
// checkpoint's content fingerprint (what `worker search` checks a table
// against).
func (m *Model) ID() string { return m.id }

// Close releases the weights.
func (m *Model) Close() error { return m.e.Close() }

// EmbeddingSpec describes the image embedding: ITC vectors for retrieval
// checkpoints (searchable with text), else the Q-Former's query outputs.
func (m *Model) EmbeddingSpec() pipeline.EmbeddingSpec {
	s := m.e.ImageEmbedding()
	return pipeline.EmbeddingSpec{Kind: s.Kind, Vectors: s.Vectors, Dim: s.Dim, Normalized: s.Normalized}
}

// Preprocessor returns the checkpoint's image processor.
func (m *Model) Preprocessor() (pipeline.Preprocessor, error) { return m.e.Images, nil }

// CheckTask implements pipeline.TaskChecker: captions need a language
// model, valid generation settings and a prompt that fits its positions
// (per-row prompts of a prompt column are checked as their rows run).
func (m *Model) CheckTask(task pipeline.Task) error {
	if !task.Caption {
		return nil
	}
	gen, err := m.generation(task)
	if err != nil {
		return err
	}
	return m.e.CheckCaption(task.Prompt, gen)
}

// Run captions and/or embeds the batch: the vision encoder and Q-Former run
// once per image, the language model decodes the whole batch together.
func (m *Model) Run(ctx context.Context, task pipeline.Task, batch []pipeline.Image) ([]pipeline.Result, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	want := len(batch[0].Pixels)
	pixels := make([]float32, 0, want*len(batch))
	for _, img := range batch {
		if len(img.Pixels) != want {
			return nil, fmt.Errorf("blip2model: image %q has %d pixel values, want %d", img.Key, len(img.Pixels), want)
		}
		pixels = append(pixels, img.Pixels...)
	}
	out := make([]pipeline.Result, len(batch))
	var emb []float32
	var err error
	switch {
	case task.Caption:
		gen, err := m.generation(task)
		if err != nil {
			return nil, err
		}
		prompts := make([]string, len(batch))
		for i, img := range batch {
			prompts[i] = task.Prompt
			if img.Prompt != "" {
				prompts[i] = img.Prompt
			}
		}
		// one vision and Q-Former run serves both captions and embeddings
		caps, e, err := m.e.CaptionEach(ctx, pixels, prompts, gen, task.Embed)
		if err != nil {
			return nil, err
		}
		emb = e
		for i, c := range caps {
			out[i].Captions = c.Texts
			for _, ids := range c.IDs {
				t := make([]int32, len(ids))
				for k, id := range ids {
					t[k] = int32(id)
				}
				out[i].TokenIDs = append(out[i].TokenIDs, t)
			}
		}
	case task.Embed:
		if emb, err = m.e.EmbedImages(ctx, pixels, len(batch)); err != nil {
			return nil, err
		}
	}
	if emb != nil {
		per := len(emb) / len(batch)
		for i := range out {
			out[i].Embedding = emb[i*per : (i+1)*per : (i+1)*per]
		}
	}
	return out, nil
}

// generation returns the loader's overrides with the task's on top (the
// job's settings, carried in its spec).
func (m *Model) generation(task pipeline.Task) (generate.Config, error) {
	if task.Generation == "" {
		return m.gen, nil
	}
	if v, ok := m.parsed.Load(task.Generation); ok {
		return v.(generate.Config), nil
	}
	over, err := generate.ParseConfig([]byte(task.Generation))
	if err != nil {
		return generate.Config{}, fmt.Errorf("job generation settings: %w", err)
	}
	gen := m.gen.Merge(over)
	if err := m.e.Generation.Merge(gen).Validate(); err != nil {
		return generate.Config{}, fmt.Errorf("job generation settings with %s's: %w", m.e.Name, err)
	}
	m.parsed.Store(task.Generation, gen)
	return gen, nil
}

// GenerationSettings describes, as JSON, the generation settings the
// captions of task are made with (the checkpoint's defaults merged with the
// overrides, with the length limit that applied, and the prompt or the
// prompt column), for the tables' metadata.
func (m *Model) GenerationSettings(task pipeline.Task) string {
	if !task.Caption {
		return ""
	}
	gen, err := m.generation(task)
	if err != nil {
		return ""
	}
	raw, err := json.Marshal(struct {
		generate.Config
		Prompt       string `json:"prompt"`
		PromptColumn string `json:"prompt_column,omitempty"`
	}{m.e.Generation.Merge(gen).WithLengthDefault(), task.Prompt, task.PromptColumn})
	if err != nil {
		return ""
	}
	return string(raw)
}
