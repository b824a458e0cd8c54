package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"blipflow/model/engine"
	"blipflow/model/search"
	"blipflow/schemas"
)

func init() {
	commands["search"] = command{summary: "rank the rows of an embeddings table against text queries", run: runSearch}
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

// runSearch embeds each query text and prints the best rows of an
// embeddings table by ITC similarity, streaming the table once.
func runSearch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	rt := runtimeFlags(fs)
	modelDir := fs.String("model", "", "image-text retrieval checkpoint folder (the one that embedded the table)")
	tablePath := fs.String("table", "", "Parquet embeddings table written by 'worker embed --out' or the pipeline")
	top := fs.Int("top", 10, "rows to print per query")
	queries, err := parseArgs(fs, args, stdout, "worker search --model DIR --table FILE.parquet [--top K] QUERY...")
	if err != nil {
		return err
	}
	switch {
	case *modelDir == "":
		return errors.New("--model is required")
	case *tablePath == "":
		return errors.New("--table is required")
	case len(queries) == 0:
		return errors.New("no QUERY given")
	case *top < 1:
		return fmt.Errorf("--top %d: want at least 1", *top)
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

	f, err := os.Open(*tablePath)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	accept := func(m schemas.Meta) error {
		if m.ModelRevision != e.Fingerprint || m.EmbeddingDim != spec.Dim || m.EmbeddingKind != engine.KindITCImage {
			return fmt.Errorf("table %s holds %s embeddings of model %s (checkpoint %s, %d values per vector); the queries are %s embeddings of model %s (checkpoint %s, %d values per vector)",
				*tablePath, m.EmbeddingKind, m.Model, m.ModelRevision, m.EmbeddingDim, spec.Kind, e.Name, e.Fingerprint, spec.Dim)
		}
		return nil
	}
	hits, _, err := search.Table(f, st.Size(), vecs, *top, accept)
	if err != nil {
		return fmt.Errorf("search %s: %w", *tablePath, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for i, q := range queries {
		line := searchLine{Query: q, Results: make([]searchHit, len(hits[i]))}
		for j, h := range hits[i] {
			line.Results[j] = searchHit{Input: h.Key, Score: h.Score}
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}
