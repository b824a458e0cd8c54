//go:build amd64 && !purego

package bf16

import "golang.org/x/sys/cpu"

// haveBF16Kernel reports whether dotPacked can run here.
var haveBF16Kernel = func() bool {
	f := hostFeatures()
	return f.AVX512F && f.AVX512BW && f.AVX512BF16
}()

// haveF32Kernel reports whether dotPackedF32 can run here.
var haveF32Kernel = hostFeatures().AVX512F

//go:noescape
func dotPackedF32(w *uint16, x *float32, ldx int, kpairs int, mr int, out *float32, ldo int)

// maxRowsF32 is the most rows of x one call of dotPackedF32 takes.
const maxRowsF32 = 4

// mulBlockF32 is mulBlockBF16 with the AVX-512F kernel; xf is x in fp32,
// rows padded to kp with zeros.
func mulBlockF32(wb []uint16, xf []float32, m, kp int, dst []float32, ldo int) {
	if m <= maxRowsF32 {
		dotPackedF32(&wb[0], &xf[0], kp, kp/2, m, &dst[0], ldo)
		return
	}
	for k0 := 0; k0 < kp; {
		kc := kp - k0
		if kc > kChunk+kChunk/4 {
			kc = kChunk
		}
		for i := 0; i < m; i += maxRowsF32 {
			dotPackedF32(&wb[k0*blockN], &xf[i*kp+k0], kp, kc/2, min(maxRowsF32, m-i), &dst[i*ldo], ldo)
		}
		k0 += kc
	}
}

// haveAVX2Kernel reports whether dotPackedAVX2 can run here.
var haveAVX2Kernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dotPackedAVX2(w *uint16, x *float32, kpairs int, out *float32)

// mulBlockAVX2 is mulBlockF32 with the AVX2 kernel, one row of x at a
// time (the block is read from memory for the first row and from cache
// for the others).
func mulBlockAVX2(wb []uint16, xf []float32, m, kp int, dst []float32, ldo int) {
	for k0 := 0; k0 < kp; {
		kc := kp - k0
		if kc > kChunk+kChunk/4 {
			kc = kChunk
		}
		for i := range m {
			dotPackedAVX2(&wb[k0*blockN], &xf[i*kp+k0], kc/2, &dst[i*ldo])
		}
		k0 += kc
	}
}

//go:noescape
func dotPacked(w *uint16, x *uint16, ldx int, kpairs int, mr int, out *float32, ldo int)

// mulBlockBF16 adds x·Wᵀ for one packed 64-column block wb into dst (m
// rows, row stride ldo, 64 columns writable per row) with the VDPBF16PS
// kernel; xb is x in bf16, rows padded to kp with zeros.
func mulBlockBF16(wb []uint16, xb []uint16, m, kp int, dst []float32, ldo int) {
	if m <= kernelRows {
		dotPacked(&wb[0], &xb[0], kp, kp/2, m, &dst[0], ldo)
		return
	}
	for k0 := 0; k0 < kp; {
		kc := kp - k0
		if kc > kChunk+kChunk/4 { // no short last chunk
			kc = kChunk
		}
		for i := 0; i < m; i += kernelRows {
			dotPacked(&wb[k0*blockN], &xb[i*kp+k0], kp, kc/2, min(kernelRows, m-i), &dst[i*ldo], ldo)
		}
		k0 += kc
	}
}
