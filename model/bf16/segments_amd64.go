//go:build amd64 && !purego

package bf16

//go:noescape
func dotSegmentsAVX512(out *float32, stride int, x *float32, w *uint16, n, seg int, scale float32)

//go:noescape
func axpySegmentsAVX512(y *float32, a *float32, stride int, w *uint16, n, seg int)

var haveSegmentsAVX512 = hostFeatures().AVX512F
