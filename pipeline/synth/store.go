package synth

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"blipflow/storage"
)

// StoreScheme prefixes the locations OpenStore understands:
// synth://N is a dataset of N images, synth://out a write-only output.
const StoreScheme = "synth://"

// Store is an object store in memory: a dataset of N one-pixel PNGs that
// exist only as a listing (every key reads the same few bytes), plus what
// is written to it. Written Parquet files are counted and dropped, so a
// million-row job leaves nothing behind. It is the input and output of
// `coordinator scale-bench`.
type Store struct {
	url    string
	n      int
	pixel  []byte
	mu     sync.Mutex
	kept   map[string][]byte
	files  atomic.Int64
	copied atomic.Int64
}

// NewStore returns a store listing n images at location.
func NewStore(location string, n int) (*Store, error) {
	pixel, err := PNG(0, 1, 1)
	if err != nil {
		return nil, err
	}
	return &Store{url: location, n: n, pixel: pixel, kept: map[string][]byte{}}, nil
}

// OpenStore opens synth://N (N images) and any other synth:// location
// (an empty store for outputs). Each call returns a new store.
func OpenStore(location string) (*Store, error) {
	rest, ok := strings.CutPrefix(location, StoreScheme)
	if !ok {
		return nil, fmt.Errorf("synth store %q: want %sN or %sNAME", location, StoreScheme, StoreScheme)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, "/"))
	if err != nil {
		n = 0
	}
	return NewStore(location, n)
}

// ListKey is the key of the i-th listed image: zero-padded, so keys sort
// as their numbers do.
func ListKey(i int) string { return fmt.Sprintf("img/%09d.png", i) }

// listIndex parses a ListKey.
func (s *Store) listIndex(key string) (int, bool) {
	digits, ok := strings.CutPrefix(key, "img/")
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, ".png")
	if !ok || len(digits) != 9 {
		return 0, false
	}
	i, err := strconv.Atoi(digits)
	return i, err == nil && i >= 0 && i < s.n
}

// URL implements storage.Store.
func (s *Store) URL() string { return s.url }

// List implements storage.Store: the images, then the kept objects, in
// key order (written keys never start with "img/" in the pipeline).
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Object) error) error {
	for i := range s.n {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		key := ListKey(i)
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		if err := fn(storage.Object{Key: key, Size: int64(len(s.pixel))}); err != nil {
			return err
		}
	}
	s.mu.Lock()
	var keys []string
	for key := range s.kept {
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	s.mu.Unlock()
	slices.Sort(keys)
	for _, key := range keys {
		obj, err := s.Stat(ctx, key)
		if err != nil {
			continue
		}
		if err := fn(obj); err != nil {
			return err
		}
	}
	return nil
}

// Read implements storage.Store.
func (s *Store) Read(_ context.Context, key string) ([]byte, error) {
	if _, ok := s.listIndex(key); ok {
		s.copied.Add(int64(len(s.pixel)))
		return s.pixel, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if data, ok := s.kept[key]; ok {
		return data, nil
	}
	return nil, fmt.Errorf("%s: %s: %w", s.url, key, storage.ErrNotExist)
}

// Write implements storage.Store: Parquet files are counted and dropped,
// other objects (key lists, manifests) kept.
func (s *Store) Write(_ context.Context, key string, data []byte) error {
	if strings.HasSuffix(key, ".parquet") {
		s.files.Add(1)
		return nil
	}
	s.mu.Lock()
	s.kept[key] = slices.Clone(data)
	s.mu.Unlock()
	return nil
}

// Stat implements storage.Store.
func (s *Store) Stat(_ context.Context, key string) (storage.Object, error) {
	if _, ok := s.listIndex(key); ok {
		return storage.Object{Key: key, Size: int64(len(s.pixel))}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if data, ok := s.kept[key]; ok {
		return storage.Object{Key: key, Size: int64(len(data))}, nil
	}
	return storage.Object{}, fmt.Errorf("%s: %s: %w", s.url, key, storage.ErrNotExist)
}

// Delete implements storage.Store.
func (s *Store) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	delete(s.kept, key)
	s.mu.Unlock()
	return nil
}

// Files counts the Parquet files written.
func (s *Store) Files() int64 { return s.files.Load() }
