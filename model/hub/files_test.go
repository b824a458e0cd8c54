package hub

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

func TestPlanDownload(t *testing.T) {
	tests := []struct {
		name      string
		repoFiles []string
		want      downloadPlan
		wantErr   bool
	}{
		{
			name:      "sharded safetensors beside pytorch weights",
			repoFiles: []string{"README.md", "config.json", "tokenizer.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "pytorch_model.bin", "tf_model.h5", "model.onnx"},
			want:      downloadPlan{files: []string{"config.json", "tokenizer.json", "model.safetensors.index.json"}, index: "model.safetensors.index.json"},
		},
		{
			name:      "single file preferred over index",
			repoFiles: []string{"config.json", "model.safetensors", "model.safetensors.index.json", "preprocessor_config.json"},
			want:      downloadPlan{files: []string{"config.json", "preprocessor_config.json", "model.safetensors"}},
		},
		{
			name:      "no safetensors",
			repoFiles: []string{"config.json", "pytorch_model.bin"},
			wantErr:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planDownload(tt.repoFiles)
			if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("planDownload = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestShardNamesRejectsEscapingPaths(t *testing.T) {
	for _, shard := range []string{"../evil.safetensors", "/abs.safetensors", `a\b.safetensors`} {
		path := filepath.Join(t.TempDir(), "index.json")
		if err := os.WriteFile(path, []byte(`{"weight_map":{"w":"`+filepathJSON(shard)+`"}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := shardNames(path); err == nil {
			t.Errorf("shard %q accepted", shard)
		}
	}
}

// filepathJSON escapes backslashes for a JSON string.
func filepathJSON(s string) string {
	out := ""
	for _, r := range s {
		if r == '\\' {
			out += `\\`
			continue
		}
		out += string(r)
	}
	return out
}

func TestParseFileMeta(t *testing.T) {
	tests := []struct {
		name     string
		headers  map[string]string
		redirect bool
		want     fileMeta
		wantErr  bool
	}{
		{"lfs redirect", map[string]string{"X-Linked-Etag": `"` + sha64 + `"`, "X-Linked-Size": "42", "Content-Length": "1"}, true, fileMeta{sha64, 42}, false},
		{"git file", map[string]string{"ETag": `W/"abc123"`, "Content-Length": "7"}, false, fileMeta{"abc123", 7}, false},
		{"redirect without linked size", map[string]string{"X-Linked-Etag": sha64, "Content-Length": "1"}, true, fileMeta{sha64, -1}, false},
		{"no etag", map[string]string{"Content-Length": "7"}, false, fileMeta{}, true},
		{"etag escaping blobs", map[string]string{"ETag": `"../x"`}, false, fileMeta{}, true},
		{"bad size", map[string]string{"ETag": `"a"`, "Content-Length": "-3"}, false, fileMeta{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			got, err := parseFileMeta(h, tt.redirect)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseFileMeta = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

const sha64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestCacheDirFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"HF_HUB_CACHE wins", map[string]string{"HF_HUB_CACHE": "/c", "HF_HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/c"},
		{"HF_HOME", map[string]string{"HF_HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/h/hub"},
		{"XDG_CACHE_HOME", map[string]string{"XDG_CACHE_HOME": "/x"}, "/x/huggingface/hub"},
		{"home", map[string]string{"HOME": "/home/u"}, "/home/u/.cache/huggingface/hub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range []string{"HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"} {
				t.Setenv(name, tt.env[name])
			}
			if home, ok := tt.env["HOME"]; ok {
				t.Setenv("HOME", home)
			}
			got, err := cacheDirFromEnv()
			if err != nil || got != tt.want {
				t.Errorf("cacheDirFromEnv = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestTokenFromLoginFile(t *testing.T) {
	home := isolateEnv(t)
	if err := os.WriteFile(filepath.Join(filepath.Dir(home), "token"), []byte("hf_from_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := tokenFromEnv(); got != "hf_from_file" {
		t.Errorf("tokenFromEnv = %q, want the login file's token", got)
	}
	t.Setenv("HF_TOKEN", "hf_from_env")
	if got := tokenFromEnv(); got != "hf_from_env" {
		t.Errorf("tokenFromEnv = %q, want HF_TOKEN to win", got)
	}
}

func TestConcurrentResolvesShareOneDownload(t *testing.T) {
	cacheDir := isolateEnv(t)
	h := newFakeHub(t)
	const workers = 4
	dirs := make([]string, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { dirs[i], errs[i] = Resolve(context.Background(), testRepo, h.options()) })
	}
	wg.Wait()
	for i := range workers {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
	}
	checkSnapshot(t, h, cacheDir, dirs[0])
	cdnGets := map[string]int{}
	for _, r := range h.seen() {
		if r.host == fakeCDNHost {
			cdnGets[r.path]++
		}
	}
	for path, n := range cdnGets {
		if n != 1 {
			t.Errorf("%s downloaded %d times, want once", path, n)
		}
	}
}
