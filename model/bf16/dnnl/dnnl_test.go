package dnnl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openOrSkip(t *testing.T) *Library {
	t.Helper()
	l, err := Open("")
	if err != nil {
		if os.Getenv("BLIPFLOW_REQUIRE_ONEDNN") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return l
}

func TestOpenBadPath(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "nothing.so")
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Open(%s) error = %v, want one naming the file", bad, err)
	}
}

// TestDescriptors checks the binding's view of oneDNN 2.x's structures:
// the blocked weights layout pads k to 32 and n to 64, and a primitive
// descriptor reports its weights layout.
func TestDescriptors(t *testing.T) {
	l := openOrSkip(t)
	t.Logf("oneDNN %s at %s, isa %s", l.Version(), l.Path, l.EffectiveISA())
	md, err := l.MemoryDesc(33, 65, BF16, BA16a64b2a)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Size(md), 64*128*2; got != want {
		t.Errorf("size of 33×65 BA16a64b2a bf16 = %d bytes, want %d", got, want)
	}
	plain, err := l.MemoryDesc(33, 65, BF16, BA)
	if err != nil {
		t.Fatal(err)
	}
	if l.Equal(md, plain) || !l.Equal(md, md) || md.Key() == plain.Key() {
		t.Error("Equal or Key do not tell layouts apart")
	}
	e, err := l.NewEngine()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	src, _ := l.MemoryDesc(4, 33, BF16, AB)
	dst, _ := l.MemoryDesc(4, 65, F32, AB)
	anyWei, _ := l.MemoryDesc(33, 65, BF16, Any)
	impl, wei, err := e.MatmulChoice(src, anyWei, nil, dst)
	if err != nil {
		t.Fatal(err)
	}
	if impl == "" || wei == nil || l.Size(wei) < 33*65*2 {
		t.Errorf("MatmulChoice = %q, weights of %d bytes", impl, l.Size(wei))
	}
	if _, err := e.Matmul(src, plain, nil, src); err == nil {
		t.Error("a matmul with mismatched shapes was created")
	} else if !strings.Contains(err.Error(), "invalid_arguments") {
		t.Logf("mismatched shapes: %v", err)
	}
}
