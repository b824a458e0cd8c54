package blas

// sgemvFunc has Backend.Sgemv's signature.
type sgemvFunc func(transA bool, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int)

// sgemmAsGemv computes a product whose C is a single row (m == 1) or a
// single column (n == 1) as a matrix-vector product with gemv, and reports
// whether it did. GEMM kernels pack and tile for large blocks, so for these
// memory-bound shapes (a decode step's linear layers) GEMV is faster.
// Arguments must already be validated.
func sgemmAsGemv(gemv sgemvFunc, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) bool {
	switch {
	case m == 1:
		// c = alpha * a·op(B) + beta*c, with a as a vector of k values.
		incX := 1
		if transA {
			incX = lda
		}
		if transB {
			gemv(false, n, k, alpha, b, ldb, a, incX, beta, c, 1)
		} else {
			gemv(true, k, n, alpha, b, ldb, a, incX, beta, c, 1)
		}
		return true
	case n == 1:
		// c = alpha * op(A)·b + beta*c, with b a vector of k values and c a
		// column strided by ldc.
		incX := 1
		if !transB {
			incX = ldb
		}
		if transA {
			gemv(true, k, m, alpha, a, lda, b, incX, beta, c, ldc)
		} else {
			gemv(false, m, k, alpha, a, lda, b, incX, beta, c, ldc)
		}
		return true
	}
	return false
}
