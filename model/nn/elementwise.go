package nn

import "math"

// geluErf applies the exact (erf) GELU to s in place, with the AVX-512
// kernel where the CPU has one and geluErfGo elsewhere.
func geluErf(s []float32) {
	if haveAVX512Elementwise {
		if len(s) > 0 {
			geluErfAVX512(&s[0], len(s))
		}
		return
	}
	geluErfGo(s)
}

// geluErfGo is the portable GELU: 0.5·v·(1 + erf(v/√2)) with erf32.
func geluErfGo(s []float32) {
	for i, v := range s {
		s[i] = 0.5 * v * (1 + erf32(v*math.Sqrt2/2))
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
// kernel where the CPU has one (it sums the exponentials in 16 lanes, so
// the sum may differ from softmaxRowGo's in the last bits), softmaxRowGo
// elsewhere.
func softmaxRow(s []float32) {
	if haveAVX512Elementwise && len(s) > 0 {
		softmaxAVX512(&s[0], len(s))
		return
	}
	softmaxRowGo(s)
}
