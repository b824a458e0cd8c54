//go:build !amd64 || purego

package nn

// haveAVX512Elementwise is false: the vector kernels are amd64 assembly.
const haveAVX512Elementwise = false

func geluErfAVX512(x *float32, n int) { panic("nn: no AVX-512 kernel on this platform") }

func softmaxAVX512(s *float32, n int) { panic("nn: no AVX-512 kernel on this platform") }

func reluAVX512(x *float32, n int) { panic("nn: no AVX-512 kernel on this platform") }
