package engine

import (
	"context"
	"strings"
	"testing"

	"blipflow/model/generate"
)

func TestCheckCaption(t *testing.T) {
	opt, err := Open(context.Background(), "../../testdata/blip2/opt-tiny/model", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	if err := opt.CheckCaption("a photo of", generate.Config{}); err != nil {
		t.Fatalf("short prompt: %v", err)
	}
	long := strings.Repeat("very ", 2000)
	if err := opt.CheckCaption(long, generate.Config{}); err == nil || !strings.Contains(err.Error(), "positions") {
		t.Fatalf("long prompt: %v, want a positions error", err)
	}
	if err := opt.CheckCaption("", generate.Config{NumBeams: generate.Int(2), NumReturnSequences: generate.Int(3)}); err == nil {
		t.Fatal("3 sequences from 2 beams accepted")
	}
	itm, err := Open(context.Background(), "../../testdata/blip2/itm-tiny/model", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer itm.Close()
	if err := itm.CheckCaption("", generate.Config{}); err == nil || !strings.Contains(err.Error(), "no language model") {
		t.Fatalf("retrieval checkpoint: %v", err)
	}
}
