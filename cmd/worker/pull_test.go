package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
)

func TestPullLocalFolderAndOfflineMiss(t *testing.T) {
	dir := fixtures.Path("opt-tiny", "model")
	var out bytes.Buffer
	if err := runPull(context.Background(), []string{"--model", dir, "--quiet"}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != dir {
		t.Fatalf("printed %q, want %q", out.String(), dir)
	}
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "1")
	err := runPull(context.Background(), []string{"--model", "Salesforce/blip2-opt-2.7b", "--quiet"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "blip2-opt-2.7b") {
		t.Fatalf("offline pull of an uncached model: %v", err)
	}
}
