//go:build amd64 && !purego

package nn

import "golang.org/x/sys/cpu"

// haveAVX512Elementwise reports whether the AVX-512F elementwise kernels
// (elementwise_amd64.s) can run here.
var haveAVX512Elementwise = cpu.X86.HasAVX512F

// geluErfAVX512 is geluErfGo on n floats at x, 16 lanes at a time.
//
//go:noescape
func geluErfAVX512(x *float32, n int)

// softmaxAVX512 is softmaxRowGo on n >= 1 floats at s.
//
//go:noescape
func softmaxAVX512(s *float32, n int)

// reluAVX512 is reluGo on n floats at x.
//
//go:noescape
func reluAVX512(x *float32, n int)

// sumF64AVX512 is the float64 sum of x[:n], n a multiple of 8.
//
//go:noescape
func sumF64AVX512(x *float32, n int) float64

// sumSqDevF64AVX512 is the float64 sum of (x[i]-mean)² over x[:n], n a
// multiple of 8.
//
//go:noescape
func sumSqDevF64AVX512(x *float32, n int, mean float64) float64

// layerNormAVX512 is normApplyGo for a layer norm, over n floats.
//
//go:noescape
func layerNormAVX512(x, gamma, beta, out *float32, n int, m, inv float32)

// rmsNormAVX512 is normApplyGo for an RMS norm, over n floats.
//
//go:noescape
func rmsNormAVX512(x, gamma, out *float32, n int, inv float32)

// geluTanhAVX512 is geluTanhGo on n floats at x.
//
//go:noescape
func geluTanhAVX512(x *float32, n int)

// quickGeluAVX512 is quickGeluGo on n floats at x.
//
//go:noescape
func quickGeluAVX512(x *float32, n int)

// haveAVX2Elementwise reports whether the AVX2 kernels
// (elementwise_avx2_amd64.s), used where AVX-512F is missing, can run.
var haveAVX2Elementwise = cpu.X86.HasAVX2

// geluErfAVX2 is geluErfGo on n floats at x, n a multiple of 8.
//
//go:noescape
func geluErfAVX2(x *float32, n int)

// maxAVX2 is the maximum of m and x[:n] as softmaxRowGo takes it, n a
// multiple of 8.
//
//go:noescape
func maxAVX2(s *float32, n int, m float32) float32

// expSumAVX2 replaces s[:n] with exp32(s[i]-m) and returns their sum, n a
// multiple of 8.
//
//go:noescape
func expSumAVX2(s *float32, n int, m float32) float32

// scaleAVX2 multiplies s[:n] by c, n a multiple of 8.
//
//go:noescape
func scaleAVX2(s *float32, n int, c float32)
