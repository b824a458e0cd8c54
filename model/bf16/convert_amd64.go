//go:build amd64 && !purego

package bf16

//go:noescape
func roundAVX512(dst *uint16, src *float32, n int)

var haveRoundAVX512 = hostFeatures().AVX512F

// fromFloat32Fast rounds the longest prefix of src it can with AVX-512
// and returns how many values it converted.
func fromFloat32Fast(dst []uint16, src []float32) int {
	n := len(src) &^ 15
	if !haveRoundAVX512 || n == 0 {
		return 0
	}
	roundAVX512(&dst[0], &src[0], n)
	return n
}
