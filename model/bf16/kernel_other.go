//go:build !amd64 || purego

package bf16

// haveBF16Kernel and haveF32Kernel are false: the assembly kernels are
// amd64 only.
const (
	haveBF16Kernel = false
	haveF32Kernel  = false
	haveAVX2Kernel = false
)

func mulBlockBF16(wb []uint16, xb []uint16, m, kp int, dst []float32, ldo int) {
	panic("bf16: no assembly kernel on this platform")
}

func mulBlockF32(wb []uint16, xf []float32, m, kp int, dst []float32, ldo int) {
	panic("bf16: no assembly kernel on this platform")
}

func mulBlockAVX2(wb []uint16, xf []float32, m, kp int, dst []float32, ldo int) {
	panic("bf16: no assembly kernel on this platform")
}
