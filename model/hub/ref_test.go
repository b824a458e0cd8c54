package hub

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    Ref
		wantErr bool
	}{
		{in: "Salesforce/blip2-opt-2.7b", want: Ref{"Salesforce/blip2-opt-2.7b", "main"}},
		{in: "Salesforce/blip2-opt-2.7b@v1.0", want: Ref{"Salesforce/blip2-opt-2.7b", "v1.0"}},
		{in: "org/name@refs/pr/3", want: Ref{"org/name", "refs/pr/3"}},
		{in: "org/name@51572668da0eb669e01a189dc22abe6088589a24", want: Ref{"org/name", "51572668da0eb669e01a189dc22abe6088589a24"}},
		{in: "name-only", wantErr: true},
		{in: "a/b/c", wantErr: true},
		{in: "./org/name", wantErr: true},
		{in: "org/na--me", wantErr: true},
		{in: "org/na..me", wantErr: true},
		{in: "org/name@", wantErr: true},
		{in: "org/name@../../x", wantErr: true},
		{in: "org/name@refs//x", wantErr: true},
		{in: `org/name@a\b`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseRef checks that every accepted reference maps to cache paths
// inside the cache folder.
func FuzzParseRef(f *testing.F) {
	for _, seed := range []string{"Salesforce/blip2-opt-2.7b", "org/name@refs/pr/1", "org/name@..", "a/b@c/../../d"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ref, err := ParseRef(in)
		if err != nil {
			return
		}
		cacheDir := filepath.Join(t.TempDir(), "hub")
		cache := newRepoCache(cacheDir, ref.Repo)
		for _, path := range []string{cache.root, cache.refPath(ref.Revision)} {
			rel, err := filepath.Rel(cacheDir, path)
			if err != nil || !filepath.IsLocal(rel) || !strings.HasPrefix(rel, "models--") {
				t.Errorf("ParseRef(%q) leads to %s, outside the cache repo folders", in, path)
			}
		}
	})
}
