package synth

import (
	"context"
	"errors"
	"slices"
	"testing"

	"blipflow/storage"
)

// TestStoreListsImagesThatAreNeverStored checks the listing (sorted, as
// stores list), reads of listed keys, and that Parquet writes are counted
// and dropped while other writes are kept.
func TestStoreListsImagesThatAreNeverStored(t *testing.T) {
	ctx := context.Background()
	s, err := OpenStore("synth://1200")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, "job/manifest.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, "job/shards/a.parquet", []byte("PAR1")); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(ctx, "", func(o storage.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1201 || !slices.IsSorted(keys) || keys[0] != ListKey(0) || keys[1200] != "job/manifest.json" {
		t.Fatalf("%d keys, sorted %v, first %q last %q", len(keys), slices.IsSorted(keys), keys[0], keys[len(keys)-1])
	}
	data, err := s.Read(ctx, ListKey(1199))
	if err != nil || len(data) == 0 {
		t.Fatalf("read a listed image: %d bytes, %v", len(data), err)
	}
	for _, missing := range []string{ListKey(1200), "job/shards/a.parquet", "img/x.png"} {
		if _, err := s.Read(ctx, missing); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("read %s: %v, want ErrNotExist", missing, err)
		}
	}
	if s.Files() != 1 {
		t.Errorf("%d Parquet files counted, want 1", s.Files())
	}
	if _, err := OpenStore("/tmp/x"); err == nil {
		t.Error("OpenStore of a path: no error")
	}
}
