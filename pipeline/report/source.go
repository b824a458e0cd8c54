package report

import (
	"bytes"
	"context"
	"strings"

	"blipflow/pipeline/fetch"
	"blipflow/sharding"
	"blipflow/storage"
)

// readSource reads the image of a row for its thumbnail: from its URL, its
// own location, the WebDataset tar it came from ("tar#member"), or, with no
// source, the key under the job's input.
func readSource(ctx context.Context, input storage.Store, key, source string) ([]byte, error) {
	switch {
	case source == "":
		return input.Read(ctx, key)
	case sharding.IsURL(source):
		return fetch.New(fetch.Config{}).Fetch(ctx, source)
	}
	location, member, inTar := strings.Cut(source, "#")
	root, objKey, err := sharding.SplitLocation(location)
	if err != nil {
		return nil, err
	}
	store, err := storage.Open(ctx, root, storage.ConfigFromEnv())
	if err != nil {
		return nil, err
	}
	data, err := store.Read(ctx, objKey)
	if err != nil || !inTar {
		return data, err
	}
	return sharding.TarMember(bytes.NewReader(data), member)
}
