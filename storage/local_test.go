package storage_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"blipflow/storage"
)

func newLocalStore(t *testing.T) storage.Store {
	st, err := storage.Open(context.Background(), t.TempDir(), storage.Config{})
	if err != nil {
		t.Fatalf("open local store: %v", err)
	}
	return st
}

func TestLocalConformance(t *testing.T) {
	runConformance(t, newLocalStore)
}

// TestLocalWriteIsAtomic rewrites one key with two full-length contents while
// readers check that every read returns one of them whole.
func TestLocalWriteIsAtomic(t *testing.T) {
	st := newLocalStore(t)
	ctx := context.Background()
	const size = 1 << 20
	versions := [][]byte{bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size)}
	mustWrite(t, st, "hot", versions[0])

	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				data, err := st.Read(ctx, "hot")
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(data, versions[0]) && !bytes.Equal(data, versions[1]) {
					errs <- errors.New("read a partial or mixed object")
					return
				}
				if err := st.List(ctx, "", func(o storage.Object) error {
					if o.Key != "hot" {
						return errors.New("listing shows " + o.Key)
					}
					return nil
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 40 {
		if err := st.Write(ctx, "hot", versions[i%2]); err != nil {
			t.Errorf("write %d: %v", i, err)
			break
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestLocalListSkipsTempFiles(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), dir, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, st, "sub/real", []byte("x"))
	if err := os.WriteFile(filepath.Join(dir, "sub", ".blipflow-tmp-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, st, ""); len(got) != 1 || got[0] != "sub/real" {
		t.Fatalf("List = %q, want only sub/real", got)
	}
}

func TestLocalFailedWriteLeavesNoTempFile(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), dir, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, st, "d/inner", []byte("x"))
	// "d" is a non-empty directory, so renaming the temp file over it fails.
	if err := st.Write(context.Background(), "d", []byte("y")); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".blipflow-tmp-") {
			t.Fatalf("temp file %s left behind", e.Name())
		}
	}
}

func TestLocalMissingRootListsNothing(t *testing.T) {
	st, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "not", "yet"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, st, ""); len(got) != 0 {
		t.Fatalf("List of a missing root = %q, want nothing", got)
	}
	mustWrite(t, st, "k", []byte("v"))
	if got := listKeys(t, st, ""); len(got) != 1 {
		t.Fatalf("after first write List = %q, want [k]", got)
	}
}

func TestOpenLocations(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		location string
		wantErr  string // substring; empty means success
	}{
		{location: dir},
		{location: "file://" + dir},
		{location: "file://localhost" + dir},
		{location: "relative/dir"},
		{location: "s3://bucket", wantErr: ""},
		{location: "s3://bucket/some/prefix", wantErr: ""},
		{location: "", wantErr: "empty"},
		{location: "s3://", wantErr: "missing bucket"},
		{location: "s3:///prefix", wantErr: "missing bucket"},
		{location: "file://otherhost/x", wantErr: "empty host"},
		{location: "gs://bucket/x", wantErr: "unsupported scheme"},
		{location: file, wantErr: "not a directory"},
		{location: "s3://bucket/p?x", wantErr: ""},
	}
	cfg := storage.Config{Endpoint: "http://127.0.0.1:9", Region: "us-east-1", PathStyle: true}
	for _, tc := range tests {
		st, err := storage.Open(context.Background(), tc.location, cfg)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Open(%q) error = %v, want one containing %q", tc.location, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", tc.location, err)
			continue
		}
		if st.URL() != tc.location {
			t.Errorf("Open(%q).URL() = %q", tc.location, st.URL())
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	vars := []string{"BLIPFLOW_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION",
		"AWS_DEFAULT_REGION", "BLIPFLOW_S3_PATH_STYLE", "BLIPFLOW_S3_MAX_RETRIES"}
	tests := []struct {
		name string
		env  map[string]string
		want storage.Config
	}{
		{name: "empty", want: storage.Config{}},
		{
			name: "blipflow endpoint wins and implies path style",
			env:  map[string]string{"BLIPFLOW_S3_ENDPOINT": "http://a:1", "AWS_ENDPOINT_URL_S3": "http://b:2", "AWS_REGION": "eu-west-1"},
			want: storage.Config{Endpoint: "http://a:1", Region: "eu-west-1", PathStyle: true},
		},
		{
			name: "AWS variables as fallback",
			env:  map[string]string{"AWS_ENDPOINT_URL": "http://c:3", "AWS_DEFAULT_REGION": "ap-south-1", "BLIPFLOW_S3_PATH_STYLE": "false"},
			want: storage.Config{Endpoint: "http://c:3", Region: "ap-south-1"},
		},
		{
			name: "S3-specific endpoint before the generic one",
			env:  map[string]string{"AWS_ENDPOINT_URL": "http://c:3", "AWS_ENDPOINT_URL_S3": "http://d:4", "BLIPFLOW_S3_MAX_RETRIES": "7"},
			want: storage.Config{Endpoint: "http://d:4", PathStyle: true, MaxRetries: 7},
		},
		{
			name: "path style without endpoint",
			env:  map[string]string{"BLIPFLOW_S3_PATH_STYLE": "1"},
			want: storage.Config{PathStyle: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range vars {
				t.Setenv(v, tc.env[v])
			}
			if got := storage.ConfigFromEnv(); got != tc.want {
				t.Fatalf("ConfigFromEnv() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNormalizeLocation(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(wd, "out")
	for _, c := range []struct{ in, want string }{
		{"out", out}, {"out/", out}, {"./out/", out}, {"./out//", out}, {"file://" + filepath.ToSlash(out) + "/", out},
		{"s3://bucket/photos/", "s3://bucket/photos"}, {"s3://bucket/photos", "s3://bucket/photos"},
		{"s3://bucket/", "s3://bucket"}, {"s3://bucket/data/{000..012}.tar", "s3://bucket/data/{000..012}.tar"},
		{"", ""}, {"https://example.com/x.csv", "https://example.com/x.csv"},
	} {
		if got := storage.NormalizeLocation(c.in); got != c.want {
			t.Errorf("NormalizeLocation(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
