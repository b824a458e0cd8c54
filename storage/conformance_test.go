package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"blipflow/storage"
)

// newStoreFunc returns an empty store private to the calling test.
type newStoreFunc func(t *testing.T) storage.Store

// runConformance checks the behaviour every Store must share.
func runConformance(t *testing.T, newStore newStoreFunc) {
	ctx := context.Background()

	t.Run("WriteReadStat", func(t *testing.T) {
		st := newStore(t)
		before := time.Now().Add(-time.Minute)
		data := []byte("hello, objects")
		mustWrite(t, st, "dir/sub/file.txt", data)
		got, err := st.Read(ctx, "dir/sub/file.txt")
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read = %q, want %q", got, data)
		}
		obj, err := st.Stat(ctx, "dir/sub/file.txt")
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if obj.Key != "dir/sub/file.txt" || obj.Size != int64(len(data)) || obj.ETag == "" || obj.ModTime.Before(before) {
			t.Fatalf("stat = %+v, want key dir/sub/file.txt, size %d, an ETag and a recent time", obj, len(data))
		}
	})

	t.Run("ReadRange", func(t *testing.T) {
		st := newStore(t)
		rr, ok := st.(storage.RangeReader)
		if !ok {
			t.Fatalf("%T does not stream reads", st)
		}
		data := []byte("0123456789abcdef")
		mustWrite(t, st, "r/obj.bin", data)
		for _, c := range []struct {
			offset, length int64
			want           string
		}{{0, -1, string(data)}, {10, -1, "abcdef"}, {3, 4, "3456"}, {0, 0, ""}} {
			body, err := rr.ReadRange(ctx, "r/obj.bin", c.offset, c.length)
			if err != nil {
				t.Fatalf("range %d+%d: %v", c.offset, c.length, err)
			}
			var buf bytes.Buffer
			_, err = buf.ReadFrom(body)
			body.Close()
			if err != nil || buf.String() != c.want {
				t.Errorf("range %d+%d = %q, %v; want %q", c.offset, c.length, buf.String(), err, c.want)
			}
		}
		if _, err := rr.ReadRange(ctx, "r/missing.bin", 0, -1); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("missing object: %v, want ErrNotExist", err)
		}
		body, err := storage.OpenStream(ctx, st, "r/obj.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(body); err != nil || buf.String() != string(data) {
			t.Errorf("OpenStream = %q, %v", buf.String(), err)
		}
	})

	t.Run("OverwriteAndEmpty", func(t *testing.T) {
		st := newStore(t)
		mustWrite(t, st, "k", []byte("first version, longer"))
		mustWrite(t, st, "k", []byte("second"))
		if got := mustRead(t, st, "k"); string(got) != "second" {
			t.Fatalf("after overwrite read = %q, want %q", got, "second")
		}
		mustWrite(t, st, "empty", nil)
		if got := mustRead(t, st, "empty"); len(got) != 0 {
			t.Fatalf("empty object read %d bytes", len(got))
		}
		if obj, err := st.Stat(ctx, "empty"); err != nil || obj.Size != 0 {
			t.Fatalf("stat empty = %+v, %v; want size 0", obj, err)
		}
	})

	t.Run("MissingIsErrNotExist", func(t *testing.T) {
		st := newStore(t)
		mustWrite(t, st, "present/child", []byte("x"))
		for _, key := range []string{"absent", "present", "present/child/deeper", "present/other"} {
			if _, err := st.Read(ctx, key); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("Read(%q) error = %v, want ErrNotExist", key, err)
			}
			if _, err := st.Stat(ctx, key); !errors.Is(err, storage.ErrNotExist) {
				t.Errorf("Stat(%q) error = %v, want ErrNotExist", key, err)
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		st := newStore(t)
		mustWrite(t, st, "a/b", []byte("x"))
		if err := st.Delete(ctx, "a/b"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := st.Read(ctx, "a/b"); !errors.Is(err, storage.ErrNotExist) {
			t.Fatalf("read after delete: err = %v, want ErrNotExist", err)
		}
		if err := st.Delete(ctx, "a/b"); err != nil {
			t.Fatalf("deleting an absent key: %v", err)
		}
		if keys := listKeys(t, st, ""); len(keys) != 0 {
			t.Fatalf("list after delete = %q, want nothing", keys)
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		st := newStore(t)
		for _, key := range []string{"", "/abs", "a/../b", "a//b", "./a", "a/"} {
			if err := st.Write(ctx, key, []byte("x")); err == nil {
				t.Errorf("Write(%q) succeeded, want an invalid-key error", key)
			}
			if _, err := st.Read(ctx, key); err == nil || errors.Is(err, storage.ErrNotExist) {
				t.Errorf("Read(%q) error = %v, want an invalid-key error", key, err)
			}
		}
	})

	t.Run("ListOrderAndPrefix", func(t *testing.T) {
		st := newStore(t)
		keys := []string{"b", "a/c", "a-b", "ab", "a/b/d", "a/b-e", "Z", "é/x", "a/b/c/d"}
		for _, k := range keys {
			mustWrite(t, st, k, []byte(k))
		}
		sorted := slices.Clone(keys)
		slices.Sort(sorted) // byte-wise, as S3 lists
		tests := []struct {
			prefix string
			want   []string
		}{
			{"", sorted},
			{"a", []string{"a-b", "a/b-e", "a/b/c/d", "a/b/d", "a/c", "ab"}},
			{"a/", []string{"a/b-e", "a/b/c/d", "a/b/d", "a/c"}},
			{"a/b", []string{"a/b-e", "a/b/c/d", "a/b/d"}},
			{"a/b/", []string{"a/b/c/d", "a/b/d"}},
			{"é", []string{"é/x"}},
			{"nothing", nil},
			{"nothing/deeper/", nil},
			{"b/", nil},
		}
		for _, tc := range tests {
			if got := listKeys(t, st, tc.prefix); !slices.Equal(got, tc.want) {
				t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		}
		var sizes []int64
		err := st.List(ctx, "a/b/", func(o storage.Object) error {
			sizes = append(sizes, o.Size)
			if o.ETag == "" || o.ModTime.IsZero() {
				t.Errorf("listed %+v without ETag or time", o)
			}
			return nil
		})
		if err != nil || !slices.Equal(sizes, []int64{7, 5}) {
			t.Errorf("List(a/b/) sizes = %v, %v; want [7 5]", sizes, err)
		}
	})

	t.Run("ListCallbackErrorStops", func(t *testing.T) {
		st := newStore(t)
		for _, k := range []string{"1", "2", "3"} {
			mustWrite(t, st, k, nil)
		}
		stop := errors.New("enough")
		var seen []string
		err := st.List(ctx, "", func(o storage.Object) error {
			seen = append(seen, o.Key)
			if o.Key == "2" {
				return stop
			}
			return nil
		})
		if err != stop {
			t.Fatalf("List returned %v, want the callback's error itself", err)
		}
		if !slices.Equal(seen, []string{"1", "2"}) {
			t.Fatalf("List visited %q after the callback failed, want [1 2]", seen)
		}
	})

	t.Run("ListManyObjects", func(t *testing.T) {
		st := newStore(t)
		const n = 1003 // more than one S3 page of 1000
		var want []string
		var g errgroup.Group
		g.SetLimit(16)
		for i := range n {
			key := fmt.Sprintf("many/%04d", i)
			want = append(want, key)
			g.Go(func() error { return st.Write(ctx, key, []byte(key)) })
		}
		if err := g.Wait(); err != nil {
			t.Fatalf("write: %v", err)
		}
		if got := listKeys(t, st, "many/"); !slices.Equal(got, want) {
			t.Fatalf("List(many/) returned %d keys (first %q), want %d in order", len(got), first(got), n)
		}
	})

	t.Run("ContextCanceled", func(t *testing.T) {
		st := newStore(t)
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if err := st.Write(canceled, "k", []byte("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("Write with a canceled context: err = %v, want context.Canceled", err)
		}
		if err := st.List(canceled, "", func(storage.Object) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Errorf("List with a canceled context: err = %v, want context.Canceled", err)
		}
	})
}

func first(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

func mustWrite(t *testing.T, st storage.Store, key string, data []byte) {
	t.Helper()
	if err := st.Write(context.Background(), key, data); err != nil {
		t.Fatalf("Write(%q): %v", key, err)
	}
}

func mustRead(t *testing.T, st storage.Store, key string) []byte {
	t.Helper()
	data, err := st.Read(context.Background(), key)
	if err != nil {
		t.Fatalf("Read(%q): %v", key, err)
	}
	return data
}

func listKeys(t *testing.T, st storage.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := st.List(context.Background(), prefix, func(o storage.Object) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

// storePrefix turns a test name into a key prefix private to that test.
func storePrefix(t *testing.T) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
}
