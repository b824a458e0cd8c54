package storage_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"blipflow/internal/s3test"
	"blipflow/storage"
)

func TestS3Conformance(t *testing.T) {
	srv := s3test.Start(t)
	runConformance(t, func(t *testing.T) storage.Store {
		return srv.Open(storePrefix(t))
	})
}

// TestS3SmallPages lists through many small ListObjectsV2 pages.
func TestS3SmallPages(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config()
	cfg.ListPageSize = 7
	st, err := storage.Open(context.Background(), srv.URL("pages"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 50 {
		key := string(rune('A'+i%26)) + strings.Repeat("x", i/26)
		want = append(want, key)
		mustWrite(t, st, key, nil)
	}
	got := listKeys(t, st, "")
	if len(got) != len(want) {
		t.Fatalf("listed %d keys through pages of 7, want %d", len(got), len(want))
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] >= got[i] {
			t.Fatalf("keys out of order at %d: %q then %q", i, got[i-1], got[i])
		}
	}
}

// TestS3PrefixIsolation checks that a root prefix is a folder, not a string
// prefix: s3://b/p1 must not see objects of s3://b/p10.
func TestS3PrefixIsolation(t *testing.T) {
	srv := s3test.Start(t)
	mustWrite(t, srv.Open("p10"), "k", []byte("x"))
	mustWrite(t, srv.Open("p1/"), "k", []byte("y"))
	if got := listKeys(t, srv.Open("p1"), ""); len(got) != 1 || got[0] != "k" {
		t.Fatalf("List under p1 = %q, want [k]", got)
	}
	if got := listKeys(t, srv.Open(""), ""); len(got) != 2 || got[0] != "p1/k" || got[1] != "p10/k" {
		t.Fatalf("List of the bucket root = %q, want [p1/k p10/k]", got)
	}
}

func TestS3MultipartWrite(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config()
	cfg.MultipartThreshold = 5 << 20
	cfg.MultipartPartSize = 5 << 20
	st, err := storage.Open(context.Background(), srv.URL("multipart"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 11<<20+123)
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	mustWrite(t, st, "big.bin", data)
	if got := mustRead(t, st, "big.bin"); !bytes.Equal(got, data) {
		t.Fatalf("multipart round trip: read %d bytes, not the %d written", len(got), len(data))
	}
}

func TestS3UnreachableEndpointIsNamed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close() // nothing listens there now

	cfg := storage.Config{
		Endpoint: endpoint, Region: "us-east-1", PathStyle: true,
		AccessKeyID: "k", SecretAccessKey: "s", MaxRetries: -1,
	}
	st, err := storage.Open(context.Background(), "s3://bkt/pre", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, readErr := st.Read(ctx, "x/y.jpg")
	_, statErr := st.Stat(ctx, "x/y.jpg")
	ops := map[string]error{
		"Read":   readErr,
		"Stat":   statErr,
		"Write":  st.Write(ctx, "x/y.jpg", []byte("z")),
		"Delete": st.Delete(ctx, "x/y.jpg"),
		"List":   st.List(ctx, "x/", func(storage.Object) error { return nil }),
	}
	for op, err := range ops {
		if err == nil {
			t.Errorf("%s against %s succeeded", op, endpoint)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "s3://bkt/pre/x/") || !strings.Contains(msg, "endpoint "+endpoint+" unreachable") {
			t.Errorf("%s error %q does not name the object and the unreachable endpoint %s", op, msg, endpoint)
		}
		if errors.Is(err, storage.ErrNotExist) {
			t.Errorf("%s error %q is ErrNotExist", op, msg)
		}
	}
}

func TestS3RetriesBridgeAnOutage(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config()
	cfg.MaxRetries = 20
	st, err := storage.Open(context.Background(), srv.URL("outage"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, st, "k", []byte("v"))
	srv.Stop()
	type result struct {
		data []byte
		err  error
	}
	read := make(chan result, 1)
	go func() {
		data, err := st.Read(context.Background(), "k")
		read <- result{data, err}
	}()
	time.Sleep(500 * time.Millisecond) // the read fails and retries meanwhile
	srv.Restart()
	got := <-read
	if got.err != nil {
		t.Fatalf("read across a restart with retries: %v", got.err)
	}
	if string(got.data) != "v" {
		t.Fatalf("read = %q, want v", got.data)
	}
}
