package pipeline

import (
	"context"
	"fmt"
	"image"
	"strings"
)

// Image is one preprocessed image on its way to the model.
type Image struct {
	// Key names the image in its input (the object key).
	Key string
	// Pixels is the preprocessed CHW float32 tensor the Preprocessor made.
	Pixels []float32
	// Prompt is the image's own prompt (see Task.PromptColumn); empty
	// means the task's prompt.
	Prompt string
}

// Result is what the model computed for one image of a batch.
type Result struct {
	// Captions are the generated captions (one per returned sequence).
	Captions []string
	// TokenIDs are the token ids of each caption.
	TokenIDs [][]int32
	// Embedding is the image embedding, EmbeddingSpec's vectors*dim values.
	Embedding []float32
	// Err reports a failure that concerns this image only; it becomes the
	// row's error instead of failing the shard.
	Err error
}

// Preprocessor decodes an encoded image and prepares the model's input
// tensor. *imageproc.Processor satisfies it. It must be safe for concurrent
// use: the worker's decoding goroutines share it.
type Preprocessor interface {
	// DecodeBytes decodes an encoded image; name identifies it in errors.
	DecodeBytes(name string, data []byte) (image.Image, error)
	// Preprocess returns the CHW float32 pixels the model expects.
	Preprocess(img image.Image) ([]float32, error)
}

// EmbeddingSpec describes the embeddings a model produces.
type EmbeddingSpec struct {
	Kind       string // what is embedded, e.g. "image_query_tokens"
	Vectors    int    // vectors per image
	Dim        int    // values per vector
	Normalized bool   // whether each vector has unit L2 norm
}

// Model runs BLIP-2 (or a stand-in) on batches of preprocessed images.
// Implementations must be safe for concurrent use: local mode shares one
// Model between its in-process workers.
type Model interface {
	// ID names the model and its revision for the output tables, e.g.
	// "Salesforce/blip2-opt-2.7b@51572668".
	ID() string
	// Run computes task for every image of batch. It returns one Result per
	// image, in order. After an error the worker runs halves of the batch
	// to find the images at fault, which get error rows; a *BatchError
	// (or an error for every image alone) fails the batch's shards.
	Run(ctx context.Context, task Task, batch []Image) ([]Result, error)
	// EmbeddingSpec describes the embeddings Run returns for Task.Embed.
	EmbeddingSpec() EmbeddingSpec
	// Preprocessor returns the Preprocessor for this model's input
	// resolution and normalisation.
	Preprocessor() (Preprocessor, error)
}

// BatchError is an error of Model.Run that concerns the batch as a whole
// (the model or its device is broken), not any image in it: the worker
// fails the batch's shards, to be retried, instead of looking for an
// image to blame.
type BatchError struct{ Err error }

func (e *BatchError) Error() string { return e.Err.Error() }

func (e *BatchError) Unwrap() error { return e.Err }

// TaskChecker is implemented by models that can tell, without running,
// that a task can never succeed with them (a caption task for a
// checkpoint without a language model, a prompt longer than its
// positions, generation settings it refuses).
type TaskChecker interface {
	CheckTask(task Task) error
}

// CheckTask returns m's objection to task, if m can check tasks.
func CheckTask(m Model, task Task) error {
	if c, ok := m.(TaskChecker); ok {
		if err := c.CheckTask(task); err != nil {
			return fmt.Errorf("model %s cannot run task %s: %w", m.ID(), task.Name(), err)
		}
	}
	return nil
}

// ModelLoader loads a model from a checkpoint folder or a known model name.
type ModelLoader func(ctx context.Context, dirOrName string) (Model, error)

// ModelConfig tells LoadModel how to load the models that are not built in.
type ModelConfig struct {
	// Checkpoint loads every --model value other than the built-in "nop"
	// forms. Nil means this binary has no real model.
	Checkpoint ModelLoader
}

// LoadModel resolves a --model value: "nop" or "nop:fail=SUBSTR" give a
// NopModel (see ParseNopModel); anything else goes to cfg.Checkpoint.
func LoadModel(ctx context.Context, dirOrName string, cfg ModelConfig) (Model, error) {
	if dirOrName == NopModelName || strings.HasPrefix(dirOrName, NopModelName+":") {
		return ParseNopModel(dirOrName)
	}
	if dirOrName == "" {
		return nil, fmt.Errorf("model: no model given (want a checkpoint folder, a model name or %q)", NopModelName)
	}
	if cfg.Checkpoint == nil {
		return nil, fmt.Errorf("model %q: this binary has no checkpoint loader (only %q is built in)", dirOrName, NopModelName)
	}
	m, err := cfg.Checkpoint(ctx, dirOrName)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", dirOrName, err)
	}
	return m, nil
}
