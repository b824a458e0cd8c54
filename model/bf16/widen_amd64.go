//go:build amd64 && !purego

package bf16

import "golang.org/x/sys/cpu"

//go:noescape
func widenAVX512(dst *float32, src *uint16, n int)

//go:noescape
func widenAVX2(dst *float32, src *uint16, n int)

var (
	haveWidenAVX512 = hostFeatures().AVX512F
	haveWidenAVX2   = cpu.X86.HasAVX2
)

// toFloat32Fast widens the longest prefix of src it can with AVX-512 (or
// AVX2) and returns how many values it converted.
func toFloat32Fast(dst []float32, src []uint16) int {
	switch {
	case haveWidenAVX512 && len(src) >= 32:
		n := len(src) &^ 31
		widenAVX512(&dst[0], &src[0], n)
		return n
	case haveWidenAVX2 && len(src) >= 16:
		n := len(src) &^ 15
		widenAVX2(&dst[0], &src[0], n)
		return n
	}
	return 0
}
