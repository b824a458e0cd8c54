package blas

import "golang.org/x/sys/cpu"

// cpuFeatures is the part of the CPU's feature set that decides which
// OpenBLAS kernel family to use.
type cpuFeatures struct {
	AVX512F, AVX512BW, AVX512DQ, AVX512VL bool
	AVX2, FMA                             bool
}

// hostFeatures reads the running CPU's features (as enabled by the OS).
func hostFeatures() cpuFeatures {
	return cpuFeatures{
		AVX512F:  cpu.X86.HasAVX512F,
		AVX512BW: cpu.X86.HasAVX512BW,
		AVX512DQ: cpu.X86.HasAVX512DQ,
		AVX512VL: cpu.X86.HasAVX512VL,
		AVX2:     cpu.X86.HasAVX2,
		FMA:      cpu.X86.HasFMA,
	}
}

// coreTypeFor names the OpenBLAS kernel family (an OPENBLAS_CORETYPE value)
// that suits f, or "" when OpenBLAS's own detection should decide. OpenBLAS
// builds before 0.3.22 do not recognise recent CPUs (Sapphire Rapids and
// newer server parts among them) and fall back to the slow Prescott SSE3
// kernels, which is why the choice is made here from feature bits rather
// than CPU model numbers.
func coreTypeFor(f cpuFeatures) string {
	switch {
	case f.AVX512F && f.AVX512BW && f.AVX512DQ && f.AVX512VL:
		return "SkylakeX"
	case f.AVX2 && f.FMA:
		return "Haswell"
	}
	return ""
}
