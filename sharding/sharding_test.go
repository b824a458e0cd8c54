package sharding

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"blipflow/storage"
)

func TestFilterKeep(t *testing.T) {
	tests := []struct {
		name   string
		filter Filter
		item   Item
		want   bool
	}{
		{"default png", Filter{}, Item{Key: "a/b.png", Size: 10}, true},
		{"default upper-case JPEG", Filter{}, Item{Key: "a/B.JPEG", Size: 10}, true},
		{"default txt", Filter{}, Item{Key: "a/readme.txt", Size: 10}, false},
		{"no extension", Filter{}, Item{Key: "a/png", Size: 10}, false},
		{"custom list", Filter{Extensions: ParseExtensions(".PNG, webp")}, Item{Key: "x.webp"}, true},
		{"custom list excludes jpg", Filter{Extensions: ParseExtensions("png")}, Item{Key: "x.jpg"}, false},
		{"below min", Filter{MinSize: 100}, Item{Key: "x.png", Size: 99}, false},
		{"at min", Filter{MinSize: 100}, Item{Key: "x.png", Size: 100}, true},
		{"above max", Filter{MaxSize: 100}, Item{Key: "x.png", Size: 101}, false},
		{"at max", Filter{MaxSize: 100}, Item{Key: "x.png", Size: 100}, true},
	}
	for _, tt := range tests {
		if got := tt.filter.Keep(tt.item); got != tt.want {
			t.Errorf("%s: Keep(%+v) = %v, want %v", tt.name, tt.item, got, tt.want)
		}
	}
}

func TestPlanIsStable(t *testing.T) {
	var items []Item
	for i := range 25 {
		items = append(items, Item{Key: string(rune('a'+i)) + ".png", Size: int64(i)})
	}
	shards, err := Plan(items, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 3 || len(shards[0].Keys) != 10 || len(shards[2].Keys) != 5 {
		t.Fatalf("shard sizes: %d shards", len(shards))
	}
	if shards[0].Bytes != 45 {
		t.Errorf("shard 0 bytes = %d, want 45", shards[0].Bytes)
	}
	// Shuffled input with duplicates gives the same plan.
	shuffled := append(slices.Clone(items), items[3], items[17])
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	again, err := Plan(shuffled, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range shards {
		if shards[i].ID != again[i].ID || !slices.Equal(shards[i].Keys, again[i].Keys) {
			t.Errorf("shard %d: %s %v vs %s %v", i, shards[i].ID, shards[i].Keys, again[i].ID, again[i].Keys)
		}
		if err := ValidID(shards[i].ID); err != nil {
			t.Error(err)
		}
	}
	// Another key set gives other ids.
	other, _ := Plan(items[1:], 10)
	if other[0].ID == shards[0].ID {
		t.Errorf("different keys, same shard id %s", other[0].ID)
	}
	if _, err := Plan(items, 0); err == nil {
		t.Error("Plan with size 0: no error")
	}
	if empty, err := Plan(nil, 10); err != nil || len(empty) != 0 {
		t.Errorf("Plan(nil) = %v, %v", empty, err)
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"job-1", "A_b-9"} {
		if err := ValidID(id); err != nil {
			t.Errorf("ValidID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", "a.b", "a b", "a/b", "a*"} {
		if ValidID(id) == nil {
			t.Errorf("ValidID(%q): no error", id)
		}
	}
}

func TestCollectFromStore(t *testing.T) {
	ctx := context.Background()
	store, err := storage.Open(ctx, filepath.Join(t.TempDir(), "in"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]int{"a/1.png": 5, "a/2.jpg": 50, "b/3.txt": 5, "b/4.webp": 500}
	for key, size := range files {
		if err := store.Write(ctx, key, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	items, err := Collect(ctx, StoreInput{Store: store}, Filter{MaxSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	slices.Sort(keys)
	if want := []string{"a/1.png", "a/2.jpg"}; !slices.Equal(keys, want) {
		t.Errorf("Collect = %v, want %v", keys, want)
	}
}
