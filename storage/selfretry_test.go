package storage

import (
	"context"
	"testing"
)

func TestSelfRetrying(t *testing.T) {
	ctx := context.Background()
	for retries, want := range map[int]bool{0: true, 3: true, -1: false} {
		s, err := Open(ctx, "s3://bucket/prefix", Config{Endpoint: "http://127.0.0.1:9", Region: "us-east-1", PathStyle: true, MaxRetries: retries})
		if err != nil {
			t.Fatal(err)
		}
		if got := SelfRetrying(s); got != want {
			t.Errorf("MaxRetries %d: SelfRetrying %v, want %v", retries, got, want)
		}
	}
	local, err := Open(ctx, t.TempDir(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if SelfRetrying(local) {
		t.Error("a local folder retries by itself?")
	}
}
