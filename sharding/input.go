// Package sharding turns a dataset into shards: it lists an input (an object
// store prefix, a CSV/JSONL/Parquet manifest of keys or URLs, or WebDataset
// tars named by a brace pattern), keeps the images that pass a Filter, and
// cuts the sorted keys into fixed-size shards whose ids depend only on their
// keys, so the same input always gives the same shards.
package sharding

import (
	"context"
	"fmt"
	"path"
	"strings"

	"blipflow/storage"
)

// Item is one input image before sharding.
type Item struct {
	Key  string // key relative to the input root
	Size int64  // bytes (0: unknown)
	// Source is where a worker reads the image when it is not Key under
	// the input root: an http(s) URL or an absolute location
	// (s3://bucket/key, /path); for WebDataset, the tar.
	Source string
	// Extra holds columns carried through to the output row.
	Extra map[string]string
}

// Input enumerates the images of a dataset.
type Input interface {
	// URL names the input (the location workers read keys from).
	URL() string
	// List calls fn for every candidate image. Order does not matter: Plan
	// sorts. An error from fn stops the listing and is returned.
	List(ctx context.Context, fn func(Item) error) error
}

// StoreInput lists every object under a storage.Store root (an S3 prefix or
// a local folder; storage.List pages through large prefixes).
type StoreInput struct {
	Store storage.Store
}

// URL implements Input.
func (in StoreInput) URL() string { return in.Store.URL() }

// List implements Input.
func (in StoreInput) List(ctx context.Context, fn func(Item) error) error {
	err := in.Store.List(ctx, "", func(obj storage.Object) error {
		return fn(Item{Key: obj.Key, Size: obj.Size})
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", in.Store.URL(), err)
	}
	return nil
}

// DefaultExtensions are the image file extensions a zero Filter keeps.
var DefaultExtensions = []string{"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"}

// Filter selects the items worth sending to the model.
type Filter struct {
	// Extensions lists the accepted extensions, without dots, compared
	// case-insensitively (nil: DefaultExtensions).
	Extensions []string
	// MinSize and MaxSize bound the object size in bytes (0: no bound).
	MinSize, MaxSize int64
}

// ParseExtensions splits a comma-separated extension list ("jpg,.PNG").
func ParseExtensions(list string) []string {
	var exts []string
	for _, ext := range strings.Split(list, ",") {
		ext = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(ext), "."))
		if ext != "" {
			exts = append(exts, ext)
		}
	}
	return exts
}

// Keep reports whether item passes the filter.
func (f Filter) Keep(item Item) bool {
	if f.MinSize > 0 && item.Size < f.MinSize {
		return false
	}
	if f.MaxSize > 0 && item.Size > f.MaxSize {
		return false
	}
	exts := f.Extensions
	if exts == nil {
		exts = DefaultExtensions
	}
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(item.Key), "."))
	for _, want := range exts {
		if ext == want {
			return true
		}
	}
	return false
}

// Collect lists in and returns the items that pass filter (all items of
// an Unfiltered input).
func Collect(ctx context.Context, in Input, filter Filter) ([]Item, error) {
	var items []Item
	keep := KeepFunc(in, filter)
	err := in.List(ctx, func(item Item) error {
		if keep(item) {
			items = append(items, item)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return items, nil
}
