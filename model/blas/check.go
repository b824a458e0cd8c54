package blas

import (
	"fmt"
	"math"
)

// checkMatrix panics unless s can hold a rows×cols row-major matrix with
// leading dimension ld. what names the operand in the message.
func checkMatrix(op, what string, rows, cols int, s []float32, ld int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("blas: %s: leading dimension of %s is %d, want >= %d", op, what, ld, max(1, cols)))
	}
	if ld > math.MaxInt32 {
		panic(fmt.Sprintf("blas: %s: leading dimension of %s is %d, above the 32-bit BLAS limit", op, what, ld))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("blas: %s: %s holds %d values, want >= %d for %d×%d with leading dimension %d", op, what, len(s), need, rows, cols, ld))
	}
}

// checkVector panics unless s can hold n values strided by inc.
func checkVector(op, what string, n int, s []float32, inc int) {
	if inc <= 0 {
		panic(fmt.Sprintf("blas: %s: increment of %s is %d, want > 0", op, what, inc))
	}
	if n == 0 {
		return
	}
	if need := (n-1)*inc + 1; len(s) < need {
		panic(fmt.Sprintf("blas: %s: %s holds %d values, want >= %d for %d values with increment %d", op, what, len(s), need, n, inc))
	}
}

// checkSizes panics on negative or over-32-bit dimensions.
func checkSizes(op string, names string, sizes ...int) {
	for i, s := range sizes {
		if s < 0 || s > math.MaxInt32 {
			panic(fmt.Sprintf("blas: %s: size %c is %d, want 0..%d", op, names[i], s, math.MaxInt32))
		}
	}
}

// checkSgemm validates the arguments of Backend.Sgemm.
func checkSgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	checkSizes("sgemm", "mnk", m, n, k)
	rowsA, colsA := m, k
	if transA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if transB {
		rowsB, colsB = n, k
	}
	checkMatrix("sgemm", "A", rowsA, colsA, a, lda)
	checkMatrix("sgemm", "B", rowsB, colsB, b, ldb)
	checkMatrix("sgemm", "C", m, n, c, ldc)
}

// checkSgemv validates the arguments of Backend.Sgemv and returns the
// lengths of x and y.
func checkSgemv(transA bool, m, n int, a []float32, lda int, x []float32, incX int, y []float32, incY int) (lenX, lenY int) {
	checkSizes("sgemv", "mn", m, n)
	checkMatrix("sgemv", "A", m, n, a, lda)
	lenX, lenY = n, m
	if transA {
		lenX, lenY = m, n
	}
	checkVector("sgemv", "x", lenX, x, incX)
	checkVector("sgemv", "y", lenY, y, incY)
	return lenX, lenY
}
