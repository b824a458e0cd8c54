package imageproc

import "math"

// This file reproduces the antialiased two-pass resampling of 8-bit images
// shared by Pillow (libImaging/Resample.c) and torch's uint8 antialias
// kernel (a port of Pillow-SIMD): filter weights computed in float64 with a
// support widened by the downscale factor, normalised to sum one, quantised
// to fixed point, a horizontal pass that rounds and clips to uint8, then a
// vertical pass that does the same. The two differ only in how many
// fractional bits the weights keep.

// Arithmetic selects whose fixed-point resampling the processor reproduces.
type Arithmetic int

const (
	// TorchvisionArithmetic is torch's uint8 antialias kernel, which
	// transformers 5's BlipImageProcessor (torchvision backend) runs: weights
	// are int16 with as many fractional bits as the largest weight allows.
	// It is the default and matches the reference fixtures bit for bit.
	TorchvisionArithmetic Arithmetic = iota
	// PillowArithmetic is Pillow's Image.resize (transformers' PIL backend
	// and the v4 "slow" processors): weights keep pillowPrecisionBits
	// fractional bits. It differs from the default by at most one 8-bit
	// level on a few pixels.
	PillowArithmetic
)

// pillowPrecisionBits is Pillow's PRECISION_BITS for 8-bit resampling: 32
// bits less 8 for the result and 2 for overshoot of negative lobes.
const pillowPrecisionBits = 32 - 8 - 2

// torchPrecisionBits is the number of fractional bits torch gives int16
// weights whose largest value is maxWeight: the most that keeps twice the
// largest weight below 2^15, capped at 22.
func torchPrecisionBits(maxWeight float64) uint {
	bits := uint(0)
	for ; bits < 22; bits++ {
		if int(0.5+maxWeight*float64(int(1)<<(bits+1))) >= 1<<15 {
			break
		}
	}
	return bits
}

// filter is a separable resampling kernel and its support radius in input
// pixels at scale one.
type filter struct {
	weight  func(x float64) float64
	support float64
}

var resampleFilters = map[int]filter{
	ResampleBox:      {boxWeight, 0.5},
	ResampleBilinear: {bilinearWeight, 1},
	ResampleHamming:  {hammingWeight, 1},
	ResampleBicubic:  {bicubicWeight, 2},
	ResampleLanczos:  {lanczosWeight, 3},
}

func boxWeight(x float64) float64 {
	if x > -0.5 && x <= 0.5 {
		return 1
	}
	return 0
}

func bilinearWeight(x float64) float64 {
	x = math.Abs(x)
	if x < 1 {
		return 1 - x
	}
	return 0
}

func hammingWeight(x float64) float64 {
	x = math.Abs(x)
	if x == 0 {
		return 1
	}
	if x >= 1 {
		return 0
	}
	x *= math.Pi
	// Pillow writes the window constants as C float literals.
	return math.Sin(x) / x * (float64(float32(0.54)) + float64(float32(0.46))*math.Cos(x))
}

// bicubicWeight is the Keys cubic convolution kernel with a = -0.5.
func bicubicWeight(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

func lanczosWeight(x float64) float64 {
	if x >= -3 && x < 3 {
		return sinc(x) * sinc(x/3)
	}
	return 0
}

// kernel holds the fixed-point weights of one resampling direction: output
// pixel i reads count[i] input pixels starting at start[i], with weights
// coeffs[i*taps : i*taps+count[i]] that have shift fractional bits.
type kernel struct {
	start, count []int
	coeffs       []int32
	taps         int
	shift        uint
	// weights is the float64 scratch the coefficients are quantised from.
	weights []float64
}

// build computes the weights for resizing inSize pixels to outSize pixels
// with arithmetic a, reusing the kernel's slices.
func (k *kernel) build(inSize, outSize int, f filter, a Arithmetic) {
	scale := float64(inSize) / float64(outSize)
	filterScale := math.Max(scale, 1)
	support := f.support * filterScale
	taps := int(math.Ceil(support))*2 + 1

	k.taps = taps
	k.start = resizeInts(k.start, outSize)
	k.count = resizeInts(k.count, outSize)
	k.coeffs = growInt32(k.coeffs, outSize*taps)
	k.weights = growFloat64(k.weights, outSize*taps)
	clear(k.weights)
	inv := 1 / filterScale
	for i := 0; i < outSize; i++ {
		center := (float64(i) + 0.5) * scale
		lo := int(center - support + 0.5)
		if lo < 0 {
			lo = 0
		}
		hi := int(center + support + 0.5)
		if hi > inSize {
			hi = inSize
		}
		n := hi - lo
		row := k.weights[i*taps : i*taps+n]
		total := 0.0
		for j := range row {
			row[j] = f.weight((float64(j+lo) - center + 0.5) * inv)
			total += row[j]
		}
		if total != 0 {
			for j := range row {
				row[j] /= total
			}
		}
		k.start[i] = lo
		k.count[i] = n
	}
	k.shift = pillowPrecisionBits
	if a == TorchvisionArithmetic {
		maxWeight := 0.0
		for _, v := range k.weights {
			maxWeight = math.Max(maxWeight, v)
		}
		k.shift = torchPrecisionBits(maxWeight)
	}
	unit := float64(int(1) << k.shift)
	for i, v := range k.weights {
		if v < 0 {
			k.coeffs[i] = int32(-0.5 + v*unit)
		} else {
			k.coeffs[i] = int32(0.5 + v*unit)
		}
	}
}

func growFloat64(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

func resizeInts(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

// clip8 turns an accumulator with shift fractional bits into a byte.
func clip8(v int32, shift uint) uint8 {
	v >>= shift
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resampleHorizontal resizes rows [rowLo, rowLo+rows) of a packed RGB image
// of width srcW to width len(k.start), writing packed RGB rows to dst.
func resampleHorizontal(dst, src []uint8, srcW, rowLo, rows int, k *kernel) {
	outW := len(k.start)
	half := int32(1) << (k.shift - 1)
	for y := range rows {
		in := src[(rowLo+y)*srcW*3 : (rowLo+y+1)*srcW*3]
		out := dst[y*outW*3 : (y+1)*outW*3]
		for x := range outW {
			lo, n := k.start[x], k.count[x]
			w := k.coeffs[x*k.taps : x*k.taps+n]
			px := in[lo*3 : (lo+n)*3]
			s0, s1, s2 := half, half, half
			for len(w) > 0 && len(px) >= 3 {
				c := w[0]
				s0 += int32(px[0]) * c
				s1 += int32(px[1]) * c
				s2 += int32(px[2]) * c
				w, px = w[1:], px[3:]
			}
			o := out[x*3:]
			o = o[:3]
			o[0], o[1], o[2] = clip8(s0, k.shift), clip8(s1, k.shift), clip8(s2, k.shift)
		}
	}
}

// resampleVertical resizes a packed RGB image of width w whose row 0 is
// source row rowOffset to height len(k.start), handing each finished row to
// emit. acc must hold w*3 values.
func resampleVertical(src []uint8, w, rowOffset int, k *kernel, acc []int32, row []uint8, emit func(y int, row []uint8)) {
	half := int32(1) << (k.shift - 1)
	stride := w * 3
	acc = acc[:stride]
	row = row[:stride]
	for y := range k.start {
		lo, n := k.start[y]-rowOffset, k.count[y]
		for i := range acc {
			acc[i] = half
		}
		for j, c := range k.coeffs[y*k.taps : y*k.taps+n] {
			in := src[(lo+j)*stride : (lo+j+1)*stride]
			for i, p := range in {
				acc[i] += int32(p) * c
			}
		}
		for i, v := range acc {
			row[i] = clip8(v, k.shift)
		}
		emit(y, row)
	}
}
