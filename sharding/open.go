package sharding

import (
	"context"
	"fmt"
)

// Input formats (InputOptions.Format).
const (
	FormatAuto       = ""           // from the location (see OpenInput)
	FormatFiles      = "files"      // every object under a folder or prefix
	FormatManifest   = "manifest"   // a CSV, JSON Lines or Parquet manifest
	FormatWebDataset = "webdataset" // WebDataset tars
)

// InputOptions say how to read an input location.
type InputOptions struct {
	// Format is one of the Format constants.
	Format string
	// Manifest applies to manifests.
	Manifest ManifestOptions
}

// IsZero reports whether o holds only defaults.
func (o InputOptions) IsZero() bool {
	o.Manifest.MaxBytes = 0 // a safety limit, not part of what is computed
	return o == InputOptions{}
}

// String describes o for job ids and specs.
func (o InputOptions) String() string {
	return fmt.Sprintf("format=%s key=%s url=%s base=%s", o.Format, o.Manifest.KeyColumn, o.Manifest.URLColumn, o.Manifest.Base)
}

// OpenInput returns the Input of location. With FormatAuto, a location
// ending in .csv, .jsonl, .ndjson or .parquet is a manifest, one ending in
// .tar (brace patterns included) WebDataset, anything else a folder or
// prefix of image files.
func OpenInput(ctx context.Context, location string, opts InputOptions, open OpenStore) (Input, error) {
	format := opts.Format
	if format == FormatAuto {
		switch {
		case IsManifest(location):
			format = FormatManifest
		case IsWebDataset(location):
			format = FormatWebDataset
		default:
			format = FormatFiles
		}
	}
	switch format {
	case FormatManifest:
		return ManifestInput{Location: location, Options: opts.Manifest, Open: open}, nil
	case FormatWebDataset:
		return WebDatasetInput{Pattern: location, Open: open}, nil
	case FormatFiles:
		store, err := open(ctx, location)
		if err != nil {
			return nil, err
		}
		return StoreInput{Store: store}, nil
	default:
		return nil, fmt.Errorf("input format %q: want %s, %s or %s", format, FormatFiles, FormatManifest, FormatWebDataset)
	}
}

// Unfiltered is implemented by inputs whose every item is meant to be
// processed (manifest rows, tars): the extension and size Filter does not
// apply to them.
type Unfiltered interface {
	Input
	Unfiltered()
}

// ShardPlanner is implemented by inputs that cut their own shards
// (WebDataset: one tar, one shard) instead of Plan's fixed-size shards of
// sorted keys.
type ShardPlanner interface {
	Input
	PlanShards(items []Item) ([]Shard, error)
}

// PlanInput cuts in's listed items into shards: by in's own ShardPlanner,
// or with Plan.
func PlanInput(in Input, items []Item, size int) ([]Shard, error) {
	if p, ok := in.(ShardPlanner); ok {
		return p.PlanShards(items)
	}
	return Plan(items, size)
}

// KeepFunc returns the filter to apply to in's items: f.Keep, or keeping
// everything for Unfiltered inputs.
func KeepFunc(in Input, f Filter) func(Item) bool {
	if _, ok := in.(Unfiltered); ok {
		return func(Item) bool { return true }
	}
	return f.Keep
}

// KnownImages counts the images of shards known before they run (those of
// Archive shards are not).
func KnownImages(shards []Shard) int {
	n := 0
	for _, s := range shards {
		n += len(s.Keys)
	}
	return n
}
