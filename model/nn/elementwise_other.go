//go:build !amd64 || purego

package nn

// haveAVX512Elementwise and haveAVX2Elementwise are false: the vector
// kernels are amd64 assembly.
const (
	haveAVX512Elementwise = false
	haveAVX2Elementwise   = false
)

func geluErfAVX512(x *float32, n int) { panic("nn: no AVX-512 kernel on this platform") }

func softmaxAVX512(s *float32, n int) { panic("nn: no AVX-512 kernel on this platform") }

func reluAVX512(x *float32, n int) { panic("nn: no AVX-512 kernel on this platform") }

func sumF64AVX512(x *float32, n int) float64 { panic("nn: no AVX-512 kernel on this platform") }

func sumSqDevF64AVX512(x *float32, n int, mean float64) float64 {
	panic("nn: no AVX-512 kernel on this platform")
}

func layerNormAVX512(x, gamma, beta, out *float32, n int, m, inv float32) {
	panic("nn: no AVX-512 kernel on this platform")
}

func rmsNormAVX512(x, gamma, out *float32, n int, inv float32) {
	panic("nn: no AVX-512 kernel on this platform")
}

func geluTanhAVX512(x *float32, n int) { panic("nn: no AVX-512 kernel on this platform") }

func quickGeluAVX512(x *float32, n int) { panic("nn: no AVX-512 kernel on this platform") }

func geluErfAVX2(x *float32, n int) { panic("nn: no AVX2 kernel on this platform") }

func maxAVX2(s *float32, n int, m float32) float32 { panic("nn: no AVX2 kernel on this platform") }

func expSumAVX2(s *float32, n int, m float32) float32 {
	panic("nn: no AVX2 kernel on this platform")
}

func scaleAVX2(s *float32, n int, c float32) { panic("nn: no AVX2 kernel on this platform") }
