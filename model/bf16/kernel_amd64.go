//go:build amd64 && !purego

package bf16

// haveBF16Kernel reports whether dotBF16x4 can run here.
var haveBF16Kernel = func() bool {
	f := hostFeatures()
	return f.AVX512F && f.AVX512BW && f.AVX512BF16
}()

//go:noescape
func dotBF16x4(w *uint16, ldw int, x *uint16, ldx int, k int, mr int, out *float32, ldo int)

// mulRowsBF16 computes out[i][j] for i < m and n0 <= j < n1 (n0 a multiple
// of 4) with the VDPBF16PS kernel; xb is x rounded to bf16.
func mulRowsBF16(xb []uint16, m int, w *Matrix, n0, n1 int, out []float32) {
	n, k := w.Rows, w.Cols
	full := n0 + (n1-n0)/4*4
	for j := n0; j < full; j += 4 {
		for i := 0; i < m; i += 4 {
			mr := min(4, m-i)
			dotBF16x4(&w.Data[j*k], k, &xb[i*k], k, k, mr, &out[i*n+j], n)
		}
	}
	if full == n1 {
		return
	}
	// The last 1..3 rows: pad the block by repeating its last row, and take
	// the sums through a scratch buffer.
	rows := n1 - full
	buf := make([]uint16, 4*k)
	for r := range 4 {
		src := w.Data[(full+min(r, rows-1))*k:][:k]
		copy(buf[r*k:], src)
	}
	var tmp [16]float32
	for i := 0; i < m; i += 4 {
		mr := min(4, m-i)
		dotBF16x4(&buf[0], k, &xb[i*k], k, k, mr, &tmp[0], 4)
		for ii := range mr {
			copy(out[(i+ii)*n+full:(i+ii)*n+n1], tmp[ii*4:ii*4+rows])
		}
	}
}
