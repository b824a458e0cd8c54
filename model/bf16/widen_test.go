package bf16

import (
	"fmt"
	"math"
	"testing"
)

// allBF16 returns every bf16 bit pattern, followed by the first few again so
// that lengths past 65536 leave tails for the scalar loop.
func allBF16(n int) []uint16 {
	s := make([]uint16, n)
	for i := range s {
		s[i] = uint16(i * 40503) // odd multiplier: a permutation of the 65536 patterns
	}
	return s
}

// TestToFloat32MatchesWiden checks the vector widening against Widen bit
// for bit (NaN payloads included) on every bf16 pattern, at lengths that
// leave tails, and at offsets that misalign the slices.
func TestToFloat32MatchesWiden(t *testing.T) {
	src := allBF16(1<<16 + 45)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 47, 80, 2560, 1<<16 + 45} {
		for _, off := range []int{0, 1, 3} {
			if off+n > len(src) {
				continue
			}
			dst := make([]float32, n+off+1)
			dst[n+off] = 7 // must stay: no write past the end
			ToFloat32(dst[off:], src[off:off+n])
			for i := range n {
				if got, want := math.Float32bits(dst[off+i]), math.Float32bits(Widen(src[off+i])); got != want {
					t.Fatalf("n=%d off=%d: ToFloat32 of %#04x = %#08x, Widen gives %#08x", n, off, src[off+i], got, want)
				}
			}
			if dst[n+off] != 7 {
				t.Fatalf("n=%d off=%d: ToFloat32 wrote past its input", n, off)
			}
		}
	}
}

func BenchmarkToFloat32(b *testing.B) {
	for _, n := range []int{80, 2560} {
		src := allBF16(n)
		dst := make([]float32, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(6 * n))
			for b.Loop() {
				ToFloat32(dst, src)
			}
		})
	}
}
