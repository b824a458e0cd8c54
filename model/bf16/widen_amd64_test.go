//go:build amd64 && !purego

package bf16

import (
	"math"
	"testing"
)

// TestWidenKernels runs each assembly kernel the CPU has on its own (the
// dispatch in ToFloat32 uses only the widest), against Widen.
func TestWidenKernels(t *testing.T) {
	src := allBF16(1 << 16)
	kernels := []struct {
		name  string
		ok    bool
		block int
		fn    func(*float32, *uint16, int)
	}{
		{"avx512", haveWidenAVX512, 32, widenAVX512},
		{"avx2", haveWidenAVX2, 16, widenAVX2},
	}
	for _, k := range kernels {
		if !k.ok {
			t.Logf("%s: not on this CPU", k.name)
			continue
		}
		for _, n := range []int{k.block, 3 * k.block, len(src)} {
			dst := make([]float32, n+1)
			dst[n] = 7
			k.fn(&dst[0], &src[0], n)
			for i := range n {
				if got, want := math.Float32bits(dst[i]), math.Float32bits(Widen(src[i])); got != want {
					t.Fatalf("%s n=%d: %#04x widens to %#08x, want %#08x", k.name, n, src[i], got, want)
				}
			}
			if dst[n] != 7 {
				t.Fatalf("%s n=%d: wrote past n", k.name, n)
			}
		}
	}
}
