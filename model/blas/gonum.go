package blas

import (
	"fmt"
	"runtime"

	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Gonum is the pure Go backend, built on gonum's BLAS. It needs no shared
// library and spreads large products over GOMAXPROCS goroutines.
type Gonum struct{}

// Name reports the implementation and its parallelism.
func (Gonum) Name() string {
	return fmt.Sprintf("gonum (pure Go, GOMAXPROCS=%d)", runtime.GOMAXPROCS(0))
}

// Sgemm implements Backend.
func (Gonum) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		// gonum wants A and B to span their rows even when k is 0; the
		// result is just beta*C.
		scaleMatrix(m, n, beta, c, ldc)
		return
	}
	if m*n*k >= repackMinWork && m > 1 && n > 1 {
		// gonum's A·Bᵀ kernel (row-by-row dot products) is the fastest of
		// its four; copying a transposed A or an untransposed B into that
		// layout costs O(mk + kn) against the product's O(mnk).
		if transA {
			a, lda, transA = transposed(a, lda, k, m), k, false
		}
		if !transB {
			b, ldb, transB = transposed(b, ldb, k, n), k, true
		}
	}
	gonum.Implementation{}.Sgemm(transpose(transA), transpose(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// repackMinWork is the product size m·n·k from which Gonum.Sgemm copies
// operands into the layout gonum multiplies fastest.
const repackMinWork = 32 * 32 * 32

// transposed returns the cols×rows transpose, packed with leading dimension
// rows, of the rows×cols matrix s with leading dimension ld.
func transposed(s []float32, ld, rows, cols int) []float32 {
	const tile = 32
	t := make([]float32, rows*cols)
	for i0 := 0; i0 < rows; i0 += tile {
		for j0 := 0; j0 < cols; j0 += tile {
			for i := i0; i < min(i0+tile, rows); i++ {
				row := s[i*ld : i*ld+cols]
				for j := j0; j < min(j0+tile, cols); j++ {
					t[j*rows+i] = row[j]
				}
			}
		}
	}
	return t
}

// Sgemv implements Backend.
func (Gonum) Sgemv(transA bool, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int) {
	lenX, lenY := checkSgemv(transA, m, n, a, lda, x, incX, y, incY)
	if lenX == 0 || lenY == 0 {
		// Unlike reference BLAS, an empty inner dimension still scales y.
		scaleVector(lenY, beta, y, incY)
		return
	}
	gonum.Implementation{}.Sgemv(transpose(transA), m, n, alpha, a, lda, x, incX, beta, y, incY)
}

func transpose(t bool) gblas.Transpose {
	if t {
		return gblas.Trans
	}
	return gblas.NoTrans
}

// scaleMatrix sets the m×n matrix c to beta*c (to zero when beta is 0, as
// BLAS does, so NaNs in c do not survive).
func scaleMatrix(m, n int, beta float32, c []float32, ldc int) {
	for i := range m {
		scaleVector(n, beta, c[i*ldc:], 1)
	}
}

// scaleVector sets the n values of y strided by inc to beta times themselves.
func scaleVector(n int, beta float32, y []float32, inc int) {
	for i := range n {
		if beta == 0 {
			y[i*inc] = 0
		} else {
			y[i*inc] *= beta
		}
	}
}
