//go:build unix

package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"blipflow/storage"
)

// Written files are 0644 and folders 0755, less the umask, as plain
// creates would make them.
func TestLocalWriteModes(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.Open(context.Background(), dir, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), "job/shards/a.parquet", []byte("x")); err != nil {
		t.Fatal(err)
	}
	mask := syscall.Umask(0)
	syscall.Umask(mask)
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "job"):                        os.ModeDir | 0o755&^os.FileMode(mask),
		filepath.Join(dir, "job", "shards", "a.parquet"): 0o644 &^ os.FileMode(mask),
	} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, info.Mode(), want)
		}
	}
}
