package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"blipflow/index"
	"blipflow/model/engine"
	"blipflow/model/search"
	"blipflow/schemas"
)

func init() {
	commands["search"] = command{summary: "rank images of embedding tables or an index against text (or image) queries", run: runSearch}
}

// searchLine is one query's result in the search command's output.
type searchLine struct {
	Query   string      `json:"query"`
	Results []searchHit `json:"results"`
}

// searchHit is one ranked row.
type searchHit struct {
	Input string  `json:"input"`
	Score float32 `json:"score"`
}

// runSearch embeds each query text (or image) and prints the best images
// by ITC similarity: exactly over tables, or from an index with an exact
// re-rank.
func runSearch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	rt := runtimeFlags(fs)
	modelDir := fs.String("model", "", "image-text retrieval checkpoint folder (the one that embedded the table; with --index, default: the index's model)")
	var tables, images listFlag
	fs.Var(&tables, "table", "Parquet embeddings or results table, folder of tables or glob pattern (repeatable): exact scan")
	indexPath := fs.String("index", "", "index written by 'worker index': approximate search, exact re-rank")
	fs.Var(&images, "image", "image file to search with (repeatable; needs --index)")
	top := fs.Int("top", 10, "rows to print per query")
	var opts index.SearchOptions
	fs.IntVar(&opts.Probe, "probe", index.DefaultProbe, "with --index: lists scanned per query vector")
	fs.IntVar(&opts.Rerank, "rerank", index.DefaultRerank, "with --index: candidates re-ranked exactly")
	queries, err := parseArgs(fs, args, stdout, "worker search (--table DIR|GLOB|FILE... | --index INDEX) [--model DIR] [--top K] [--image FILE]... QUERY...")
	if err != nil {
		return err
	}
	switch {
	case len(tables) == 0 && *indexPath == "":
		return errors.New("--table or --index is required")
	case len(tables) > 0 && *indexPath != "":
		return errors.New("--table and --index exclude each other")
	case len(images) > 0 && *indexPath == "":
		return errors.New("--image needs --index")
	case len(queries) == 0 && len(images) == 0:
		return errors.New("no QUERY given")
	case *top < 1:
		return fmt.Errorf("--top %d: want at least 1", *top)
	case *indexPath == "" && *modelDir == "":
		return errors.New("--model is required")
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	print := func(query string, hits []search.Hit) error {
		line := searchLine{Query: query, Results: make([]searchHit, len(hits))}
		for j, h := range hits {
			line.Results[j] = searchHit{Input: h.Key, Score: h.Score}
		}
		return enc.Encode(line)
	}
	if *indexPath != "" {
		return searchIndex(ctx, *indexPath, *modelDir, rt, queries, images, *top, opts, print)
	}
	e, err := openEmbeddingModel(ctx, *modelDir, rt)
	if err != nil {
		return err
	}
	defer e.Close()
	spec, err := e.TextEmbedding()
	if err != nil {
		return err
	}
	vecs, err := e.EmbedTexts(ctx, queries)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	paths, err := search.ExpandTables(tables)
	if err != nil {
		return err
	}
	accept := func(path string, m schemas.Meta) error {
		if m.ModelRevision != e.Fingerprint || m.EmbeddingDim != spec.Dim || m.EmbeddingKind != engine.KindITCImage {
			return fmt.Errorf("table %s holds %s embeddings of model %s (checkpoint %s, %d values per vector); the queries are %s embeddings of model %s (checkpoint %s, %d values per vector)",
				path, m.EmbeddingKind, m.Model, m.ModelRevision, m.EmbeddingDim, spec.Kind, e.Name, e.Fingerprint, spec.Dim)
		}
		return nil
	}
	hits, err := search.Tables(paths, vecs, *top, accept)
	if err != nil {
		return err
	}
	for i, q := range queries {
		if err := print(q, hits[i]); err != nil {
			return err
		}
	}
	return nil
}

// searchIndex answers text and image queries from an index.
func searchIndex(ctx context.Context, path, modelRef string, rt *engine.Options, texts, images []string, top int, opts index.SearchOptions, print func(string, []search.Hit) error) error {
	m, err := openIndexed(ctx, path, modelRef, rt)
	if err != nil {
		return err
	}
	defer m.Close()
	var vecs [][]float32
	if len(texts) > 0 {
		if vecs, err = m.e.EmbedTexts(ctx, texts); err != nil {
			return err
		}
	}
	for i, text := range texts {
		hits, err := m.ix.Search([][]float32{vecs[i]}, top, opts)
		if err != nil {
			return err
		}
		if err := print(text, hits); err != nil {
			return err
		}
	}
	for _, img := range images {
		if err := ctx.Err(); err != nil {
			return err
		}
		q, err := m.imageQuery(ctx, img)
		if err != nil {
			return err
		}
		hits, err := m.ix.Search(q, top, opts)
		if err != nil {
			return err
		}
		if err := print(img, hits); err != nil {
			return err
		}
	}
	return nil
}
