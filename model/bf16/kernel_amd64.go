//go:build amd64 && !purego

package bf16

// haveBF16Kernel reports whether dotPacked can run here.
var haveBF16Kernel = func() bool {
	f := hostFeatures()
	return f.AVX512F && f.AVX512BW && f.AVX512BF16
}()

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
	for k0 := 0; k0 < kp; k0 += kChunk {
		kc := min(kChunk, kp-k0)
		for i := 0; i < m; i += kernelRows {
			dotPacked(&wb[k0*blockN], &xb[i*kp+k0], kp, kc/2, min(kernelRows, m-i), &dst[i*ldo], ldo)
		}
	}
}
