package sharding

import (
	"bytes"
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"blipflow/storage"
)

func openLocal(ctx context.Context, location string) (storage.Store, error) {
	return storage.Open(ctx, location, storage.Config{})
}

// listManifest writes a manifest file into a temp folder and lists it.
func listManifest(t *testing.T, name string, data []byte, opts ManifestOptions) (string, []Item, error) {
	t.Helper()
	dir := t.TempDir()
	store, err := openLocal(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Write(context.Background(), name, data); err != nil {
		t.Fatal(err)
	}
	in, err := OpenInput(context.Background(), filepath.Join(dir, name), InputOptions{Manifest: opts}, openLocal)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := in.(Unfiltered); !ok {
		t.Fatalf("%s: input %T is filtered", name, in)
	}
	var items []Item
	err = in.List(context.Background(), func(it Item) error { items = append(items, it); return nil })
	return dir, items, err
}

type manifestRecord struct {
	Key     string `parquet:"key"`
	URL     string `parquet:"url"`
	Caption string `parquet:"caption"`
	Width   int64  `parquet:"width"`
}

func TestManifestFormats(t *testing.T) {
	var pq bytes.Buffer
	err := parquet.Write(&pq, []manifestRecord{
		{Key: "a", URL: "https://img.test/a.jpg", Caption: "a cat", Width: 640},
		{Key: "b", URL: "https://img.test/b?id=2", Caption: "a, \"quoted\" dog", Width: 320},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{Key: "a", Source: "https://img.test/a.jpg", Extra: map[string]string{"caption": "a cat", "width": "640"}},
		{Key: "b", Source: "https://img.test/b?id=2", Extra: map[string]string{"caption": `a, "quoted" dog`, "width": "320"}},
	}
	files := map[string]string{
		"m.csv": "\ufeffkey,url,caption,width\r\na,https://img.test/a.jpg,a cat,640\nb,https://img.test/b?id=2,\"a, \"\"quoted\"\" dog\",320\n",
		"m.jsonl": `{"key":"a","url":"https://img.test/a.jpg","caption":"a cat","width":640}` + "\n\n" +
			`{"key":"b","url":"https://img.test/b?id=2","caption":"a, \"quoted\" dog","width":320,"note":null}` + "\n",
		"m.parquet": pq.String(),
	}
	for name, data := range files {
		_, items, err := listManifest(t, name, []byte(data), ManifestOptions{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !slices.EqualFunc(items, want, itemsEqual) {
			t.Errorf("%s: items %+v, want %+v", name, items, want)
		}
	}
}

func itemsEqual(a, b Item) bool {
	return a.Key == b.Key && a.Source == b.Source && maps.Equal(a.Extra, b.Extra)
}

func TestManifestColumns(t *testing.T) {
	tests := []struct {
		name, csv string
		opts      ManifestOptions
		want      []Item // Source relative to the manifest folder when not absolute
		err       string
	}{
		{name: "key only, relative to the manifest", csv: "key,license\nimg/1.jpg,cc\n",
			want: []Item{{Key: "img/1.jpg", Source: "img/1.jpg", Extra: map[string]string{"license": "cc"}}}},
		{name: "url without key", csv: "url\nhttps://h/1.jpg\n",
			want: []Item{{Key: "https://h/1.jpg", Source: "https://h/1.jpg"}}},
		{name: "named columns, base", csv: "id,path,x\n7,a.png,1\n", opts: ManifestOptions{KeyColumn: "id", URLColumn: "path", Base: "s3://b/imgs"},
			want: []Item{{Key: "7", Source: "s3://b/imgs/a.png", Extra: map[string]string{"x": "1"}}}},
		{name: "absolute keys", csv: "key\ns3://b/x.jpg\n/abs/y.jpg\n",
			want: []Item{{Key: "s3://b/x.jpg", Source: "s3://b/x.jpg"}, {Key: "/abs/y.jpg", Source: "/abs/y.jpg"}}},
		{name: "same row twice", csv: "key,url\na,https://h/a\na,https://h/a\n",
			want: []Item{{Key: "a", Source: "https://h/a"}}},
		{name: "key with two sources", csv: "key,url\na,https://h/a\na,https://h/b\n", err: "line 3: row 3: key \"a\" repeats row 2"},
		{name: "no column", csv: "name\nx\n", err: "no url or key column (columns: name)"},
		{name: "missing named column", csv: "key\nx\n", opts: ManifestOptions{URLColumn: "link"}, err: `no column "link"`},
		{name: "empty url", csv: "key,url\na,\n", err: `line 2: row 2: empty "url"`},
		{name: "escaping key", csv: "key\n../secret.jpg\n", err: "relative key without"},
		{name: "ragged", csv: "key,url\na\n", err: "wrong number of fields"},
	}
	for _, tt := range tests {
		dir, items, err := listManifest(t, "m.csv", []byte(tt.csv), tt.opts)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		for i := range tt.want {
			tt.want[i].Source = Resolve(dir, tt.want[i].Source)
		}
		if err != nil || !slices.EqualFunc(items, tt.want, itemsEqual) {
			t.Errorf("%s: %+v, %v; want %+v", tt.name, items, err, tt.want)
		}
	}
}

func TestPlanCarriesSourcesAndExtras(t *testing.T) {
	items := []Item{
		{Key: "b", Source: "https://h/b", Extra: map[string]string{"c": "2"}},
		{Key: "a", Source: "https://h/a"},
		{Key: "c", Source: "https://h/c"},
	}
	shards, err := Plan(items, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shards[0].Keys, []string{"a", "b"}) || !slices.Equal(shards[0].Sources, []string{"https://h/a", "https://h/b"}) ||
		len(shards[0].Extras) != 2 || shards[0].Extras[0] != nil || shards[0].Extras[1]["c"] != "2" {
		t.Errorf("shard 0: %+v", shards[0])
	}
	if shards[1].Extras != nil || !slices.Equal(shards[1].Sources, []string{"https://h/c"}) {
		t.Errorf("shard 1: %+v", shards[1])
	}
	if plain, _ := Plan([]Item{{Key: "x.png"}}, 2); plain[0].Sources != nil || plain[0].Extras != nil {
		t.Errorf("store items got sources or extras: %+v", plain[0])
	}
}
