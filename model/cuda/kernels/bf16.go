package kernels

import "math"

// ToBF16 rounds f to bfloat16 as f32_to_bf16 in src/common.cuh does (to
// nearest, ties to even; NaN stays a quiet NaN), for weights converted on
// the host before upload.
func ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// FromBF16 widens a bfloat16 to float32.
func FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
