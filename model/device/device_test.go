package device

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Device{
		"":        {Kind: Auto},
		"auto":    {Kind: Auto},
		"CPU":     {Kind: CPU},
		"cuda":    {Kind: CUDA},
		" gpu ":   {Kind: CUDA},
		"cuda:0":  {Kind: CUDA},
		"cuda:3":  {Kind: CUDA, Ordinal: 3},
		"Cuda:12": {Kind: CUDA, Ordinal: 12},
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"cuda:", "cuda:-1", "cuda:x", "tpu", "cuda1", "rocm"} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Parse(%q) = %v, want an error naming it", bad, err)
		}
	}
	for _, s := range []string{"auto", "cpu", "cuda", "cuda:2"} {
		d, _ := Parse(s)
		if d.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, d.String())
		}
	}
}

func TestFlagValue(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var d Device
	fs.Var(&d, "device", Usage)
	if err := fs.Parse([]string{"--device", "cuda:1"}); err != nil || d != (Device{Kind: CUDA, Ordinal: 1}) {
		t.Fatalf("--device cuda:1 gave %+v, %v", d, err)
	}
	fs.SetOutput(new(strings.Builder))
	if err := fs.Parse([]string{"--device", "metal"}); err == nil {
		t.Fatal("--device metal accepted")
	}
}

func TestResolve(t *testing.T) {
	noGPU := func() error { return errors.New("no NVIDIA driver: libcuda.so.1 not found") }
	gpu := func() error { return nil }
	d, warn, err := Resolve(Device{Kind: Auto}, noGPU)
	if err != nil || d.Kind != CPU || !strings.Contains(warn, "libcuda.so.1") {
		t.Fatalf("auto without GPU = %+v %q %v", d, warn, err)
	}
	if d, warn, err = Resolve(Device{Kind: Auto}, gpu); err != nil || d.Kind != CUDA || warn != "" {
		t.Fatalf("auto with GPU = %+v %q %v", d, warn, err)
	}
	if _, _, err = Resolve(Device{Kind: CUDA, Ordinal: 1}, noGPU); err == nil || err.Error() != "--device cuda:1: no NVIDIA driver: libcuda.so.1 not found" {
		t.Fatalf("explicit cuda without GPU: %v", err)
	}
	if d, _, err = Resolve(Device{Kind: CPU}, func() error { panic("probed") }); err != nil || d.Kind != CPU {
		t.Fatalf("cpu = %+v %v", d, err)
	}
}

func TestDecodeBatch(t *testing.T) {
	row := KVRowBytes(32, 64, 2560, 4) // OPT-2.7b, fp32 cache, 64 steps
	if row != 32*2*64*2560*4 {
		t.Fatalf("KVRowBytes = %d", row)
	}
	s := Sizing{Free: 40 << 30, Reserve: 2 << 30, PerRow: row}
	n, err := s.DecodeBatch()
	if err != nil || n != int((38<<30)/row) {
		t.Fatalf("DecodeBatch = %d, %v", n, err)
	}
	s.Cap = 128
	if n, _ := s.DecodeBatch(); n != 128 {
		t.Fatalf("capped DecodeBatch = %d", n)
	}
	s = Sizing{Free: 1 << 30, Reserve: 1 << 30, PerRow: row}
	if _, err := s.DecodeBatch(); !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("no room: %v", err)
	}
	if _, err := (Sizing{Free: 1 << 30}).DecodeBatch(); err == nil {
		t.Fatal("unknown row size accepted")
	}
}
