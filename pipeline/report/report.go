// Package report writes a job's report: one static HTML page, readable
// without a network (inline CSS, JS and SVG), with the job's summary, a
// chart of its throughput over time, its errors by reason and a sample of
// thumbnails with their captions (small JPEGs beside the page).
package report

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"blipflow/pipeline/jobstate"
	"blipflow/storage"
)

// PageFile and ThumbDir name the report's files inside its folder.
const (
	PageFile = "index.html"
	ThumbDir = "thumbs"
)

// Config describes one report.
type Config struct {
	// Spec and States are the job's spec and shard states.
	Spec   jobstate.Spec
	States map[string]jobstate.ShardState
	// Output holds the job's tables (the shard states' files); Input its
	// images (read for the thumbnails of rows without a source; nil for
	// manifest and WebDataset inputs, whose rows all have one).
	Output, Input storage.Store
	// OpenStore opens the locations rows are read from (a manifest's
	// paths and s3:// objects, WebDataset tars), with the report's S3
	// settings.
	OpenStore func(ctx context.Context, location string) (storage.Store, error)
	// Dir is the local folder the page and thumbnails are written to.
	Dir string
	// Sample is the number of thumbnails (24; negative: none).
	Sample int
	// ThumbSize is the longest side of a thumbnail in pixels (240).
	ThumbSize int
	// Now is the report's time (zero: time.Now()).
	Now time.Time
}

// Summary is what the report shows in numbers.
type Summary struct {
	Job        string
	Images     int // planned images
	Rows       int // rows in the tables
	OK         int // rows without error that are not duplicates
	Errors     int // rows with an error
	Duplicates int // rows recorded as duplicates
	Shards     int // planned shards
	Done       int // shards with a table
	Failed     int // dead-lettered shards
	Models     []string
	Duration   time.Duration // from the job's creation to its last shard
	Thumbnails int           // sample images written
	Page       string        // path of the HTML page
}

// Write reads the job's tables, makes the thumbnails and writes the page
// into cfg.Dir, returning the summary.
func Write(ctx context.Context, cfg Config) (Summary, error) {
	switch {
	case cfg.Output == nil:
		return Summary{}, errors.New("report: no output store")
	case cfg.Dir == "":
		return Summary{}, errors.New("report: no folder")
	}
	if cfg.Sample == 0 {
		cfg.Sample = 24
	}
	if cfg.ThumbSize <= 0 {
		cfg.ThumbSize = 240
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	data, err := collect(ctx, cfg)
	if err != nil {
		return Summary{}, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, ThumbDir), 0o755); err != nil {
		return Summary{}, fmt.Errorf("report folder %s: %w", cfg.Dir, err)
	}
	samples := data.pickSample(max(cfg.Sample, 0))
	thumbs := newThumbnailer(cfg.ThumbSize)
	for i := range samples {
		name := fmt.Sprintf("%s/%04d.jpg", ThumbDir, i)
		src, err := readSource(ctx, cfg, samples[i].Key, samples[i].Source)
		if err == nil {
			err = thumbs.write(samples[i].Key, src, filepath.Join(cfg.Dir, filepath.FromSlash(name)))
		}
		if err != nil {
			samples[i].Problem = err.Error()
			continue
		}
		samples[i].Thumb = name
		data.summary.Thumbnails++
	}
	page := filepath.Join(cfg.Dir, PageFile)
	data.summary.Page = page
	if err := writePage(page, buildView(cfg, data, samples)); err != nil {
		return Summary{}, err
	}
	return data.summary, nil
}

// jobData is what collect gathers from the job's state and tables.
type jobData struct {
	summary Summary
	// rows are the rows of every table, slimmed to what the page shows.
	rows []slimRow
	// shards are the job's shards, by id.
	shards []shardView
}

// slimRow is the part of a table row the report uses.
type slimRow struct {
	Key, Caption, Error, DuplicateOf string
	Shard                            string
	// Source is where the image was read (URL, location, tar#member),
	// empty for a key under the job's input.
	Source string
}

// shardView is one shard in the report.
type shardView struct {
	ID, State, Reason, Model, Worker    string
	Images, Rows, ErrorRows, Duplicates int
	RetryRound                          int
	FinishedAt                          time.Time
	// Offset is FinishedAt as time since the job's creation.
	Offset time.Duration
}

// sortedShards returns the states as views in id order.
func sortedShards(spec jobstate.Spec, states map[string]jobstate.ShardState) []shardView {
	views := make([]shardView, 0, len(states))
	for id, s := range states {
		views = append(views, shardView{ID: id, State: s.State, Reason: s.Reason, Model: s.Model, Worker: s.Worker,
			Images: s.Images, Rows: s.Rows, ErrorRows: s.ErrorRows, Duplicates: s.Duplicates, RetryRound: s.RetryRound,
			FinishedAt: s.UpdatedAt, Offset: max(s.UpdatedAt.Sub(spec.CreatedAt), 0)})
	}
	slices.SortFunc(views, func(a, b shardView) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return views
}
