package nn

import "math"

// geluErf applies the exact (erf) GELU to s in place, with the AVX-512
// kernel where the CPU has one, else the AVX2 one (the last len%8 elements
// in Go), else geluErfGo. All give the same bits.
func geluErf(s []float32) {
	switch {
	case haveAVX512Elementwise:
		if len(s) > 0 {
			geluErfAVX512(&s[0], len(s))
		}
	case haveAVX2Elementwise:
		geluErfAVX2Row(s)
	default:
		geluErfGo(s)
	}
}

// geluErfAVX2Row is geluErfGo with the AVX2 kernel over whole vectors of 8.
func geluErfAVX2Row(s []float32) {
	n8 := len(s) &^ 7
	if n8 > 0 {
		geluErfAVX2(&s[0], n8)
	}
	geluErfGo(s[n8:])
}

// geluErfGo is the portable GELU: 0.5·v·(1 + erf(v/√2)) with erf32.
func geluErfGo(s []float32) {
	for i, v := range s {
		s[i] = 0.5 * v * (1 + erf32(v*math.Sqrt2/2))
	}
}

// geluTanh applies the tanh-approximated GELU to s in place, with the
// AVX-512 kernel where the CPU has one and geluTanhGo elsewhere.
func geluTanh(s []float32) {
	if haveAVX512Elementwise {
		if len(s) > 0 {
			geluTanhAVX512(&s[0], len(s))
		}
		return
	}
	geluTanhGo(s)
}

// geluTanhGo is the portable tanh GELU, its tanh in float64.
func geluTanhGo(s []float32) {
	const c = 0.7978845608028654 // sqrt(2/pi)
	for i, v := range s {
		s[i] = 0.5 * v * (1 + float32(math.Tanh(float64(c*(v+0.044715*v*v*v)))))
	}
}

// quickGELU applies x·σ(1.702x) to s in place, with the AVX-512 kernel
// where the CPU has one and quickGeluGo elsewhere.
func quickGELU(s []float32) {
	if haveAVX512Elementwise {
		if len(s) > 0 {
			quickGeluAVX512(&s[0], len(s))
		}
		return
	}
	quickGeluGo(s)
}

// quickGeluGo is the portable quick GELU, its exponential in float64.
func quickGeluGo(s []float32) {
	for i, v := range s {
		s[i] = v / (1 + float32(math.Exp(float64(-1.702*v))))
	}
}

// relu zeroes the negative elements of s, with the AVX-512 kernel where
// the CPU has one and reluGo elsewhere.
func relu(s []float32) {
	if haveAVX512Elementwise {
		if len(s) > 0 {
			reluAVX512(&s[0], len(s))
		}
		return
	}
	reluGo(s)
}

// reluGo is the portable ReLU; NaN and -0 stay as they are.
func reluGo(s []float32) {
	for i, v := range s {
		if v < 0 {
			s[i] = 0
		}
	}
}

// softmaxRow replaces s with softmax(s), computed stably: with the AVX-512
// kernel where the CPU has one, else softmaxRowAVX2, else softmaxRowGo. The
// vector kernels sum the exponentials in 16 or 8 lanes, so the sum may
// differ from softmaxRowGo's in the last bits; the exponentials do not.
func softmaxRow(s []float32) {
	switch {
	case haveAVX512Elementwise && len(s) > 0:
		softmaxAVX512(&s[0], len(s))
	case haveAVX2Elementwise && len(s) > 0:
		softmaxRowAVX2(s)
	default:
		softmaxRowGo(s)
	}
}

// softmaxRowAVX2 is softmaxRowGo with its three passes over whole vectors
// of 8 in AVX2 and over the last len(s)%8 elements in Go; len(s) >= 1.
func softmaxRowAVX2(s []float32) {
	n8 := len(s) &^ 7
	m := s[0]
	if n8 > 0 {
		m = maxAVX2(&s[0], n8, m)
	}
	for _, v := range s[n8:] {
		if v > m {
			m = v
		}
	}
	var sum float32
	if n8 > 0 {
		sum = expSumAVX2(&s[0], n8, m)
	}
	for i := n8; i < len(s); i++ {
		e := exp32(s[i] - m)
		s[i] = e
		sum += e
	}
	inv := 1 / sum
	if n8 > 0 {
		scaleAVX2(&s[0], n8, inv)
	}
	for i := n8; i < len(s); i++ {
		s[i] *= inv
	}
}

// normRow applies the norm n to one row into o, with the AVX-512 kernels
// where the CPU has them and the Go code elsewhere.
func normRow(n *Norm, row, o []float32) {
	if len(row) == 0 {
		return
	}
	m, inv := normStats(n, row)
	if !haveAVX512Elementwise {
		normApplyGo(n, row, o, m, inv)
		return
	}
	if n.RMS {
		rmsNormAVX512(&row[0], &n.Gamma.Data[0], &o[0], len(row), inv)
		return
	}
	layerNormAVX512(&row[0], &n.Gamma.Data[0], &n.Beta.Data[0], &o[0], len(row), m, inv)
}

// normStats is normStatsGo with the float64 sums taken 8 lanes at a time
// where the CPU can; only the order of the float64 additions differs.
func normStats(n *Norm, row []float32) (m, inv float32) {
	if !haveAVX512Elementwise {
		return normStatsGo(n, row)
	}
	d, main := len(row), len(row)&^7
	var mean float64
	if !n.RMS {
		if main > 0 {
			mean = sumF64AVX512(&row[0], main)
		}
		for _, v := range row[main:] {
			mean += float64(v)
		}
		mean /= float64(d)
	}
	var ss float64
	if main > 0 {
		ss = sumSqDevF64AVX512(&row[0], main, mean)
	}
	for _, v := range row[main:] {
		c := float64(v) - mean
		ss += c * c
	}
	return float32(mean), float32(1 / math.Sqrt(ss/float64(d)+float64(n.Eps)))
}

// normStatsGo is a row's mean (0 for an RMS norm) and 1/sqrt(variance +
// eps), both summed in float64 and rounded to float32.
func normStatsGo(n *Norm, row []float32) (m, inv float32) {
	d := len(row)
	var mean float64
	if !n.RMS {
		for _, v := range row {
			mean += float64(v)
		}
		mean /= float64(d)
	}
	var ss float64
	for _, v := range row {
		c := float64(v) - mean
		ss += c * c
	}
	return float32(mean), float32(1 / math.Sqrt(ss/float64(d)+float64(n.Eps)))
}

// normApplyGo writes a normalized row: g·(v·inv) for an RMS norm,
// (v-m)·inv·g + b for a layer norm.
func normApplyGo(n *Norm, row, o []float32, m, inv float32) {
	g := n.Gamma.Data
	if n.RMS {
		for i, v := range row {
			o[i] = g[i] * (v * inv)
		}
		return
	}
	b := n.Beta.Data
	for i, v := range row {
		o[i] = (v-m)*inv*g[i] + b[i]
	}
}
