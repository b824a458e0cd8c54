package s3test

import (
	"context"
	"errors"
	"testing"

	"blipflow/storage"
)

func TestStartServesBucketAndSurvivesRestart(t *testing.T) {
	srv := Start(t)
	ctx := context.Background()
	st := srv.Open("restart")
	if err := st.Write(ctx, "kept.txt", []byte("before")); err != nil {
		t.Fatalf("write: %v", err)
	}

	srv.Stop()
	if _, err := st.Read(ctx, "kept.txt"); err == nil {
		t.Fatal("read from a stopped server succeeded")
	}

	srv.Restart()
	got, err := st.Read(ctx, "kept.txt")
	if err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	if string(got) != "before" {
		t.Fatalf("read after restart = %q, want %q", got, "before")
	}
}

func TestEnvironmentReachesServer(t *testing.T) {
	srv := Start(t)
	ctx := context.Background()
	st, err := storage.Open(ctx, srv.URL("env"), storage.ConfigFromEnv())
	if err != nil {
		t.Fatalf("open with ConfigFromEnv: %v", err)
	}
	if err := st.Write(ctx, "a", []byte("x")); err != nil {
		t.Fatalf("write with environment credentials: %v", err)
	}
	if _, err := st.Read(ctx, "missing"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("read missing: err = %v, want ErrNotExist", err)
	}
}

func TestCreateBucket(t *testing.T) {
	srv := Start(t)
	srv.CreateBucket("second")
	st, err := storage.Open(context.Background(), "s3://second/p", srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Write(context.Background(), "k", []byte("v")); err != nil {
		t.Fatalf("write to second bucket: %v", err)
	}
}
