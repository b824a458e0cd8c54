//go:build !amd64 || purego

package bf16

// haveBF16Kernel is false: the assembly kernels are amd64 only.
const haveBF16Kernel = false

func mulRowsBF16(xb []uint16, m int, w *Matrix, n0, n1 int, out []float32) {
	panic("bf16: no assembly kernel on this platform")
}
