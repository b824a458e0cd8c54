//go:build !amd64 || purego

package bf16

// haveBF16Kernel is false: the assembly kernels are amd64 only.
const haveBF16Kernel = false

func mulBlockBF16(wb []uint16, xb []uint16, m, kp int, dst []float32, ldo int) {
	panic("bf16: no assembly kernel on this platform")
}
