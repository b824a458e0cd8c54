// Package blip2model adapts a loaded BLIP-2 checkpoint (package engine) to
// the pipeline's Model interface, so workers caption and embed with it.
package blip2model

import (
	"context"
	"encoding/json"
	"fmt"

	"blipflow/model/engine"
	"blipflow/model/generate"
	"blipflow/pipeline"
)

// Model runs a BLIP-2 checkpoint for the pipeline.
type Model struct {
	e   *engine.Engine
	id  string
	gen generate.Config
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
		return &Model{e: e, id: e.Name + "@" + e.Fingerprint, gen: gen}, nil
	}
}

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
// model, a prompt that fits its positions and valid generation settings.
func (m *Model) CheckTask(task pipeline.Task) error {
	if !task.Caption {
		return nil
	}
	return m.e.CheckCaption(task.Prompt, m.gen)
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
		var caps []engine.Caption
		if task.Embed { // one vision and Q-Former run serves both
			caps, emb, err = m.e.CaptionAndEmbed(pixels, len(batch), task.Prompt, m.gen)
		} else {
			caps, err = m.e.Caption(pixels, len(batch), task.Prompt, m.gen)
		}
		if err != nil {
			return nil, err
		}
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
		if emb, err = m.e.EmbedImages(pixels, len(batch)); err != nil {
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

// GenerationSettings describes, as JSON, the generation settings the
// captions of task are made with (the checkpoint's defaults merged with the
// overrides, and the prompt), for the tables' metadata.
func (m *Model) GenerationSettings(task pipeline.Task) string {
	if !task.Caption {
		return ""
	}
	raw, err := json.Marshal(struct {
		generate.Config
		Prompt string `json:"prompt"`
	}{m.e.Generation.Merge(m.gen), task.Prompt})
	if err != nil {
		return ""
	}
	return string(raw)
}
