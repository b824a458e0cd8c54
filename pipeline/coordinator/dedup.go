package coordinator

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/worker"
	"blipflow/schemas"
	"blipflow/storage"
)

// seedConcurrency bounds the concurrent claims of an earlier table's
// contents.
const seedConcurrency = 16

// dedupSpec returns the job's dedup settings (nil: off). A local table
// path is made absolute so that the spec names one file.
func dedupSpec(req Request) *jobstate.Dedup {
	if !req.Dedup && req.DedupTable == "" {
		return nil
	}
	table := req.DedupTable
	if table != "" && !strings.Contains(table, "://") {
		if abs, err := filepath.Abs(table); err == nil {
			table = abs
		}
	}
	return &jobstate.Dedup{Scope: req.ID, Table: table}
}

// seedDedupTable claims, in the job's dedup scope, the content of every
// processed row of the job's earlier table, so that the job's copies of
// them become duplicates naming the table's keys. Claims are idempotent:
// a resumed job seeds again harmlessly.
func (c *Coordinator) seedDedupTable(ctx context.Context, spec jobstate.Spec) error {
	if spec.Dedup == nil || spec.Dedup.Table == "" {
		return nil
	}
	start := time.Now()
	table := spec.Dedup.Table
	_, rows, err := c.readTable(ctx, table)
	if err != nil {
		return fmt.Errorf("job %s dedup table: %w", spec.ID, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(seedConcurrency)
	seeded := 0
	for _, r := range rows {
		if r.SHA256 == "" || r.Error != "" || r.Extra[worker.ExtraDuplicateOf] != "" {
			continue
		}
		seeded++
		g.Go(func() error {
			_, _, err := c.cfg.Jobs.ClaimContent(gctx, spec.Dedup.Scope, r.SHA256, jobstate.ContentClaim{Key: r.Key, Table: table})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("job %s dedup table %s: %w", spec.ID, table, err)
	}
	c.cfg.Log.Info("dedup table claimed", "job", spec.ID, "table", table, "rows", len(rows), "contents", seeded,
		"took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// readTable reads a results table given as a file path or URL
// (s3://bucket/key.parquet).
func (c *Coordinator) readTable(ctx context.Context, location string) (schemas.Meta, []schemas.Row, error) {
	dir, file := path.Split(location)
	if strings.HasPrefix(location, "s3://") && strings.Count(strings.TrimPrefix(location, "s3://"), "/") == 0 {
		dir, file = location, ""
	}
	if file == "" {
		return schemas.Meta{}, nil, fmt.Errorf("table %s: want the location of a .parquet file", location)
	}
	if dir == "" {
		dir = "."
	}
	store, err := c.cfg.OpenStore(ctx, dir)
	if err != nil {
		return schemas.Meta{}, nil, fmt.Errorf("table %s: %w", location, err)
	}
	return readRows(ctx, store, file)
}

// readRows reads the results table at key of store.
func readRows(ctx context.Context, store storage.Store, key string) (schemas.Meta, []schemas.Row, error) {
	data, err := store.Read(ctx, key)
	if err != nil {
		return schemas.Meta{}, nil, fmt.Errorf("read table %s: %w", key, err)
	}
	meta, rows, err := schemas.ReadRows(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return schemas.Meta{}, nil, fmt.Errorf("table %s: %w", key, err)
	}
	return meta, rows, nil
}
