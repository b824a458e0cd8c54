package bf16

import (
	"math"
)

// FromFloat32 rounds src to bf16 (round to nearest even, NaN kept NaN) into
// dst, which must be at least as long as src.
func FromFloat32(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	done := fromFloat32Fast(dst, src)
	for i, f := range src[done:] {
		dst[done+i] = Round(f)
	}
}

// Round rounds one float32 to bf16 (round to nearest even; a NaN stays a
// NaN, made quiet; values past the largest bf16 become ±Inf).
func Round(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// ToFloat32 widens src into dst, which must be at least as long as src
// (exactly: every bf16 is a float32).
func ToFloat32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	done := toFloat32Fast(dst, src)
	for i, h := range src[done:] {
		dst[done+i] = Widen(h)
	}
}

// Widen returns the float32 value of one bf16.
func Widen(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
