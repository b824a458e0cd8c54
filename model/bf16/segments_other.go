//go:build !amd64 || purego

package bf16

const haveSegmentsAVX512 = false

func dotSegmentsAVX512(out *float32, stride int, x *float32, w *uint16, n, seg int, scale float32) {
	panic("bf16: no assembly kernel on this platform")
}

func axpySegmentsAVX512(y *float32, a *float32, stride int, w *uint16, n, seg int) {
	panic("bf16: no assembly kernel on this platform")
}
