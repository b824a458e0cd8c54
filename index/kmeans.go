package index

import (
	"math"
	"math/rand/v2"

	"blipflow/model/blas"
)

// assignChunk is the number of rows scored against the centroids per
// matrix product (bounds the scratch to assignChunk×k floats).
const assignChunk = 2048

// assigner finds the nearest centroid (in L2) of rows by matrix products:
// argmin ‖x−c‖² = argmax x·c − ‖c‖²/2.
type assigner struct {
	bk        blas.Backend
	centroids []float32 // k×d
	halfNorm  []float32 // ‖c‖²/2
	k, d      int
	scratch   []float32
}

func newAssigner(bk blas.Backend, centroids []float32, k, d int) *assigner {
	a := &assigner{bk: bk, centroids: centroids, k: k, d: d, halfNorm: make([]float32, k)}
	for j := range k {
		c := centroids[j*d : (j+1)*d]
		a.halfNorm[j] = dot(c, c) / 2
	}
	return a
}

// assign writes to out[i] the nearest centroid of row i of x (n rows of d
// floats with leading dimension lda).
func (a *assigner) assign(x []float32, n, lda int, out []int32) {
	if len(a.scratch) < assignChunk*a.k {
		a.scratch = make([]float32, assignChunk*a.k)
	}
	for lo := 0; lo < n; lo += assignChunk {
		rows := min(assignChunk, n-lo)
		s := a.scratch[:rows*a.k]
		a.bk.Sgemm(false, true, rows, a.k, a.d, 1, x[lo*lda:], lda, a.centroids, a.d, 0, s, a.k)
		for i := range rows {
			row := s[i*a.k : (i+1)*a.k]
			best, bestJ := float32(math.Inf(-1)), 0
			for j, v := range row {
				if v -= a.halfNorm[j]; v > best {
					best, bestJ = v, j
				}
			}
			out[lo+i] = int32(bestJ)
		}
	}
}

// kmeans clusters n rows of d floats (contiguous) into k centroids with
// Lloyd's algorithm from k distinct random rows, splitting the largest
// cluster whenever one empties. With n ≤ k every row is a centroid and the
// rest repeat the first.
func kmeans(bk blas.Backend, x []float32, n, d, k, iters int, rng *rand.Rand) []float32 {
	cents := make([]float32, k*d)
	if n <= k {
		copy(cents, x[:n*d])
		for j := n; j < k && n > 0; j++ {
			copy(cents[j*d:(j+1)*d], x[:d])
		}
		return cents
	}
	for j, i := range rng.Perm(n)[:k] {
		copy(cents[j*d:(j+1)*d], x[i*d:(i+1)*d])
	}
	assign := make([]int32, n)
	counts := make([]int, k)
	sums := make([]float64, k*d)
	for range iters {
		a := newAssigner(bk, cents, k, d)
		a.assign(x, n, d, assign)
		clear(counts)
		clear(sums)
		for i, j := range assign {
			counts[j]++
			row, sum := x[i*d:(i+1)*d], sums[int(j)*d:(int(j)+1)*d]
			for t, v := range row {
				sum[t] += float64(v)
			}
		}
		for j := range k {
			if counts[j] == 0 {
				continue
			}
			inv := 1 / float64(counts[j])
			for t := range d {
				cents[j*d+t] = float32(sums[j*d+t] * inv)
			}
		}
		splitEmpty(cents, counts, d, rng)
	}
	return cents
}

// splitEmpty gives each empty cluster half of the largest one: a copy of
// its centroid, both nudged apart by a small symmetric perturbation.
func splitEmpty(cents []float32, counts []int, d int, rng *rand.Rand) {
	const eps = 1.0 / 1024
	for j := range counts {
		if counts[j] != 0 {
			continue
		}
		big := 0
		for i, c := range counts {
			if c > counts[big] {
				big = i
			}
		}
		if counts[big] < 2 {
			return
		}
		src, dst := cents[big*d:(big+1)*d], cents[j*d:(j+1)*d]
		for t := range d {
			delta := float32(eps * (rng.Float64()*2 - 1))
			if src[t] != 0 {
				delta *= abs32(src[t])
			}
			dst[t] = src[t] + delta
			src[t] -= delta
		}
		counts[j] = counts[big] / 2
		counts[big] -= counts[j]
	}
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// dot is the dot product of two equal-length vectors, four lanes at a time.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
