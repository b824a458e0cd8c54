package engine

import (
	"context"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/blas"
	"blipflow/model/cuda"
)

func TestDeviceChoice(t *testing.T) {
	if cuda.Available() == nil {
		t.Skip("hardware: this machine has a GPU: the CPU fallbacks are not reachable")
	}
	ref := fixtures.Path("opt-tiny", "model")
	_, err := Open(context.Background(), ref, Options{BLAS: blas.Gonum{}, Device: "cuda"})
	if err == nil || err.Error() != "--device cuda: no NVIDIA driver: libcuda.so.1 not found" {
		t.Fatalf("--device cuda without a driver: %v", err)
	}
	if _, err := Open(context.Background(), ref, Options{BLAS: blas.Gonum{}, Device: "cuda:x"}); err == nil || !strings.Contains(err.Error(), "cuda:x") {
		t.Fatalf("--device cuda:x: %v", err)
	}
	var warnings []string
	e, err := Open(context.Background(), ref, Options{BLAS: blas.Gonum{}, Device: "auto", Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.OnGPU() || len(warnings) != 1 || !strings.Contains(warnings[0], "no GPU, running on the CPU") {
		t.Fatalf("auto without a GPU: on GPU %v, warnings %q", e.OnGPU(), warnings)
	}
	if _, _, err := e.DeviceMemory(); err == nil {
		t.Fatal("DeviceMemory on the CPU did not fail")
	}
	e2, err := Open(context.Background(), ref, Options{BLAS: blas.Gonum{}, Warn: func(s string) { t.Errorf("default device warned: %s", s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if e2.OnGPU() {
		t.Fatal("the default device is not the CPU")
	}
}

func TestDecodeRowBytes(t *testing.T) {
	e := open(t, "opt-tiny")
	c := e.Model.Config
	got := e.DecodeRowBytes(1, 20)
	kv := uint64(c.Text.NumHiddenLayers) * 2 * uint64(c.NumQueryTokens+21) * uint64(c.Text.HiddenSize) * 4
	if got <= kv || got > 2*kv+uint64(c.Text.VocabSize)*64 {
		t.Fatalf("DecodeRowBytes = %d, KV alone %d", got, kv)
	}
}
