package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"blipflow/pipeline/fetch"
	"blipflow/sharding"
	"blipflow/storage"
)

// readSource reads the image of a row for its thumbnail: from its URL, its
// own location, the WebDataset tar it came from ("tar#member"), or, with no
// source, the key under the job's input. The job's limits apply: URLs
// reach private addresses only if the job allowed it, and locations must
// be under the job's source root when it has one.
func readSource(ctx context.Context, cfg Config, key, source string) ([]byte, error) {
	switch {
	case source == "" && cfg.Input == nil:
		return nil, errors.New("no source and no input folder to read the key under")
	case source == "":
		return cfg.Input.Read(ctx, key)
	case sharding.IsURL(source):
		return fetch.New(fetch.Config{AllowPrivate: cfg.Spec.AllowPrivateAddresses}).Fetch(ctx, source)
	}
	location, member, inTar := strings.Cut(source, "#")
	if root := cfg.Spec.SourceRoot; root != "" && !sharding.Within(root, location) {
		return nil, fmt.Errorf("%s is outside the manifest's folder %s", location, root)
	}
	root, objKey, err := sharding.SplitLocation(location)
	if err != nil {
		return nil, err
	}
	open := cfg.OpenStore
	if open == nil {
		open = func(ctx context.Context, location string) (storage.Store, error) {
			return storage.Open(ctx, location, storage.ConfigFromEnv())
		}
	}
	store, err := open(ctx, root)
	if err != nil {
		return nil, err
	}
	data, err := store.Read(ctx, objKey)
	if err != nil || !inTar {
		return data, err
	}
	return sharding.TarMember(bytes.NewReader(data), member)
}
