package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"blipflow/index"
	"blipflow/model/engine"
	"blipflow/model/search"
)

func init() {
	commands["index"] = command{summary: "build a nearest-neighbour index over embedding tables for 'search --index' and 'serve'", run: runIndex}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runIndex builds an index file over a job's embedding tables.
func runIndex(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("index", flag.ContinueOnError)
	var tables listFlag
	fs.Var(&tables, "table", "embeddings or results table, folder of tables or glob pattern (repeatable; further arguments add more)")
	out := fs.String("out", "", "index file to write")
	var p index.Params
	fs.IntVar(&p.Lists, "lists", 0, "inverted lists (default: about the square root of the number of vectors)")
	fs.IntVar(&p.SubVectors, "sub-vectors", 0, "product-quantiser bytes per vector (default: dimension/8)")
	fs.Uint64Var(&p.Seed, "seed", 1, "seed of the training sample and k-means")
	rest, err := parseArgs(fs, args, stdout, "worker index --table DIR|GLOB|FILE... --out INDEX [--lists L] [--sub-vectors M]")
	if err != nil {
		return err
	}
	tables = append(tables, rest...)
	switch {
	case len(tables) == 0:
		return errors.New("--table is required")
	case *out == "":
		return errors.New("--out is required")
	}
	paths, err := search.ExpandTables(tables)
	if err != nil {
		return err
	}
	st, err := index.BuildFromTables(paths, *out, p)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "indexed %d images from %d tables into %s in %s\n", st.Images, st.Tables, *out, st.Duration.Round(1e6))
	return nil
}

// indexedModel is an index with the model that embeds its queries.
type indexedModel struct {
	ix *index.Index
	e  *embeddingModel
}

// openIndexed opens an index and the model that made it (modelRef, or the
// model the index records), refusing a model of other embeddings.
func openIndexed(ctx context.Context, path, modelRef string, rt *engine.Options) (*indexedModel, error) {
	ix, err := index.Open(path)
	if err != nil {
		return nil, err
	}
	if modelRef == "" {
		modelRef = ix.Header().Model
	}
	e, err := openEmbeddingModel(ctx, modelRef, rt)
	if err != nil {
		ix.Close()
		return nil, fmt.Errorf("the model of index %s: %w", path, err)
	}
	spec, err := e.TextEmbedding()
	if err == nil {
		err = ix.CheckModel(e.Name, e.Fingerprint, engine.KindITCImage, spec.Dim)
	}
	if err != nil {
		e.Close()
		ix.Close()
		return nil, err
	}
	return &indexedModel{ix: ix, e: e}, nil
}

func (m *indexedModel) Close() {
	m.e.Close()
	m.ix.Close()
}

// imageQuery embeds an image file as a query: its per-query vectors.
func (m *indexedModel) imageQuery(ctx context.Context, path string) ([][]float32, error) {
	vecs, errs, err := m.e.embedImages(ctx, []string{path})
	if err != nil {
		return nil, err
	}
	if errs[0] != nil {
		return nil, errs[0]
	}
	return splitRows(vecs[0], m.ix.Header().Vectors), nil
}
