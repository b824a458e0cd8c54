package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"blipflow/model/engine"
	"blipflow/schemas"
)

func init() {
	commands["embed"] = command{summary: "embed images (or texts with --text) for image-text search", run: runEmbed}
}

// embeddingModel is a checkpoint opened for the embed, search and match
// commands.
type embeddingModel struct {
	*engine.Engine
}

// openEmbeddingModel loads a checkpoint folder or model name with the
// runtime the flags chose.
func openEmbeddingModel(ctx context.Context, ref string, rt *engine.Options) (*embeddingModel, error) {
	e, err := engine.Open(ctx, ref, *rt)
	if err != nil {
		return nil, err
	}
	return &embeddingModel{e}, nil
}

// meta describes embeddings of the given spec for the table's metadata.
func (e *embeddingModel) meta(s engine.EmbeddingSpec) schemas.Meta {
	return schemas.Meta{Model: e.Name, ModelRevision: e.Fingerprint, Task: "embed", EmbeddingKind: s.Kind,
		EmbeddingVectors: s.Vectors, EmbeddingDim: s.Dim, Normalized: s.Normalized}
}

// readImages preprocesses image files into one batch, skipping the ones
// that cannot be read or decoded: it returns the pixels of the good ones
// and, by position in paths, the error of each bad one.
func (e *embeddingModel) readImages(paths []string) ([]float32, int, []error) {
	var pixels []float32
	good := 0
	errs := make([]error, len(paths))
	for i, path := range paths {
		px, err := e.Images.File(path)
		if err != nil {
			errs[i] = err
			continue
		}
		pixels = append(pixels, px...)
		good++
	}
	return pixels, good, errs
}

// embedImages returns the flattened [Q*D] embedding of each image file; a
// file that cannot be read has a nil embedding and its error.
func (e *embeddingModel) embedImages(ctx context.Context, paths []string) ([][]float32, []error, error) {
	pixels, good, errs := e.readImages(paths)
	out := make([][]float32, len(paths))
	if good == 0 {
		return out, errs, nil
	}
	flat, err := e.EmbedImages(ctx, pixels, good)
	if err != nil {
		return nil, nil, err
	}
	rows := splitRows(flat, good)
	for i := range out {
		if errs[i] == nil {
			out[i], rows = rows[0], rows[1:]
		}
	}
	return out, errs, nil
}

// embedTexts returns the embedding of each text.
func (e *embeddingModel) embedTexts(ctx context.Context, texts []string) ([][]float32, []error, error) {
	out, err := e.EmbedTexts(ctx, texts)
	return out, make([]error, len(texts)), err
}

// splitRows cuts x into n equal rows.
func splitRows(x []float32, n int) [][]float32 {
	w := len(x) / n
	out := make([][]float32, n)
	for i := range out {
		out[i] = x[i*w : (i+1)*w : (i+1)*w]
	}
	return out
}

// embedLine is one line of the embed command's JSON output: a text's
// vector, or an image's list of per-query vectors.
type embedLine struct {
	Input     string `json:"input"`
	Embedding any    `json:"embedding"`
}

// runEmbed embeds images or texts and writes them as JSON lines or as a
// Parquet embeddings table.
func runEmbed(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("embed", flag.ContinueOnError)
	rt := runtimeFlags(fs)
	modelDir := fs.String("model", "", "checkpoint folder or model name (an image-text retrieval checkpoint for ITC embeddings)")
	texts := fs.Bool("text", false, "the inputs are texts: write their ITC text embeddings")
	outPath := fs.String("out", "", "write a Parquet embeddings table here instead of JSON lines to stdout")
	batchSize := fs.Int("batch-size", 8, "inputs per model call")
	inputs, err := parseArgs(fs, args, stdout, "worker embed --model DIR [--text] [--out FILE.parquet] [--batch-size B] INPUT...")
	if err != nil {
		return err
	}
	switch {
	case *modelDir == "":
		return errors.New("--model is required")
	case len(inputs) == 0:
		return errors.New("no INPUT given")
	case *batchSize < 1:
		return fmt.Errorf("--batch-size %d: want at least 1", *batchSize)
	}
	e, err := openEmbeddingModel(ctx, *modelDir, rt)
	if err != nil {
		return err
	}
	defer e.Close()

	meta := e.meta(e.ImageEmbedding())
	embed := e.embedImages
	if *texts {
		spec, err := e.TextEmbedding()
		if err != nil {
			return err
		}
		meta = e.meta(spec)
		embed = e.embedTexts
	}

	var names []string
	var vecs [][]float32
	failed := 0
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for lo := 0; lo < len(inputs); lo += *batchSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := inputs[lo:min(lo+*batchSize, len(inputs))]
		out, errs, err := embed(ctx, batch)
		if err != nil {
			return err
		}
		for i, v := range out {
			if errs[i] != nil { // a bad image is reported in its place; the rest go on
				failed++
				if *outPath != "" {
					fmt.Fprintf(os.Stderr, "worker embed: %s: %v\n", batch[i], errs[i])
				} else if err := enc.Encode(map[string]string{"input": batch[i], "error": errs[i].Error()}); err != nil {
					return err
				}
				continue
			}
			if *outPath != "" {
				names, vecs = append(names, batch[i]), append(vecs, v)
				continue
			}
			var value any = v
			if !*texts {
				value = splitRows(v, meta.EmbeddingVectors)
			}
			if err := enc.Encode(embedLine{Input: batch[i], Embedding: value}); err != nil {
				return err
			}
		}
	}
	if *outPath != "" {
		meta.CreatedAt = time.Now().UTC()
		if err := writeEmbeddingsTable(*outPath, meta, names, vecs); err != nil {
			return err
		}
		kind := "image"
		if *texts {
			kind = "text"
		}
		fmt.Fprintf(stdout, "%s: %d %s embeddings (%d vectors of %d, %s) from %s\n",
			*outPath, len(vecs), kind, meta.EmbeddingVectors, meta.EmbeddingDim, meta.EmbeddingKind, e.Name)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be read (see their error lines)", failed, len(inputs))
	}
	return nil
}

// writeEmbeddingsTable writes names and vecs as a Parquet embeddings table.
// The file sits behind a buffer, which also keeps the Parquet writer from
// closing it before the buffer is flushed.
func writeEmbeddingsTable(path string, meta schemas.Meta, names []string, vecs [][]float32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := schemas.WriteEmbeddings(w, meta, names, vecs); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
