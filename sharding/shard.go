package sharding

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Shard is a unit of work: a fixed list of image keys.
type Shard struct {
	// ID is "<index>-<hash>": the position in the plan (for readable,
	// ordered output names) and a hash of the keys. The same keys give the
	// same ID.
	ID string
	// Keys are the image keys, sorted.
	Keys []string
	// Sources and Extras, when not nil, parallel Keys: each image's
	// Item.Source and Item.Extra.
	Sources []string
	Extras  []map[string]string
	// Archive, when set, is the location of a WebDataset tar whose samples
	// are the shard's images (Keys is then empty: only a worker reading the
	// tar learns them).
	Archive string
	// Bytes is the total size of the shard's images.
	Bytes int64
}

// idPattern matches the job and shard ids the pipeline accepts: they name
// KV keys, NATS subjects and output files.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// ValidID reports whether id can name a job or a shard.
func ValidID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("id %q: want 1 to 80 letters, digits, '-' or '_'", id)
	}
	return nil
}

// Plan sorts items by key, drops duplicate keys and cuts them into shards
// of at most size images. The result depends only on the set of keys.
func Plan(items []Item, size int) ([]Shard, error) {
	if size <= 0 {
		return nil, fmt.Errorf("shard size %d: want at least 1", size)
	}
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b Item) int { return strings.Compare(a.Key, b.Key) })
	sorted = slices.CompactFunc(sorted, func(a, b Item) bool { return a.Key == b.Key })
	shards := make([]Shard, 0, (len(sorted)+size-1)/size)
	for start := 0; start < len(sorted); start += size {
		shards = append(shards, makeShard(len(shards), sorted[start:min(start+size, len(sorted))]))
	}
	return shards, nil
}

// makeShard builds the index-th shard of a plan from its sorted items.
func makeShard(index int, chunk []Item) Shard {
	shard := Shard{Keys: make([]string, len(chunk))}
	for i, item := range chunk {
		shard.Keys[i] = item.Key
		shard.Bytes += item.Size
	}
	shard.Sources, shard.Extras = sourcesAndExtras(chunk)
	shard.ID = fmt.Sprintf("%05d-%s", index, KeysHash(shard.Keys))
	return shard
}

// KeysHash returns a short stable hash of a key list (16 hex digits of the
// SHA-256 of the newline-joined keys).
func KeysHash(keys []string) string {
	h := sha256.New()
	for _, key := range keys {
		h.Write([]byte(key))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// sourcesAndExtras returns the items' sources and extra columns, each nil
// when no item has one.
func sourcesAndExtras(items []Item) (sources []string, extras []map[string]string) {
	if slices.ContainsFunc(items, func(it Item) bool { return it.Source != "" }) {
		sources = make([]string, len(items))
	}
	if slices.ContainsFunc(items, func(it Item) bool { return len(it.Extra) > 0 }) {
		extras = make([]map[string]string, len(items))
	}
	for i, item := range items {
		if sources != nil {
			sources[i] = item.Source
		}
		if extras != nil {
			extras[i] = item.Extra
		}
	}
	return sources, extras
}
