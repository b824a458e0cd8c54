// Shared helpers of blipflow's kernels. The sources use no CUDA headers so
// that NVRTC compiles them alone: bf16 is a raw unsigned short with its own
// conversions, and the math functions and warp intrinsics used are those
// NVRTC declares built in (expf, erff, tanhf, sqrtf, fmaxf, __shfl_xor_sync,
// __shfl_sync, __syncthreads, atomicAdd).

typedef unsigned short bf16;

#define FULL_MASK 0xffffffffu

__device__ __forceinline__ float bits_to_f32(unsigned u) {
	union { unsigned u; float f; } v;
	v.u = u;
	return v.f;
}

__device__ __forceinline__ unsigned f32_to_bits(float f) {
	union { float f; unsigned u; } v;
	v.f = f;
	return v.u;
}

__device__ __forceinline__ float neg_inf() { return bits_to_f32(0xff800000u); }

__device__ __forceinline__ bool is_nan(float x) { return x != x; }

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }

// bf16_to_f32 widens a bfloat16 (the high half of a float32).
__device__ __forceinline__ float bf16_to_f32(bf16 h) { return bits_to_f32(((unsigned)h) << 16); }

// f32_to_bf16 rounds to nearest, ties to even; NaN stays a (quiet) NaN.
__device__ __forceinline__ bf16 f32_to_bf16(float f) {
	unsigned u = f32_to_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u) {
		return (bf16)((u >> 16) | 0x40u);
	}
	u += 0x7fffu + ((u >> 16) & 1u);
	return (bf16)(u >> 16);
}

__device__ __forceinline__ float warp_sum(float v) {
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
	return v;
}

__device__ __forceinline__ float warp_max(float v) {
	for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
	return v;
}

// block_sum returns the sum of v over the block (blockDim.x a multiple of
// 32, at most 1024) to every thread; scratch holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float *scratch) {
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	v = warp_sum(v);
	if (lane == 0) scratch[warp] = v;
	__syncthreads();
	int warps = blockDim.x >> 5;
	v = (int)threadIdx.x < warps ? scratch[threadIdx.x] : 0.0f;
	if (warp == 0) v = warp_sum(v);
	if (threadIdx.x == 0) scratch[0] = v;
	__syncthreads();
	v = scratch[0];
	__syncthreads();
	return v;
}

// block_max is block_sum for the maximum.
__device__ __forceinline__ float block_max(float v, float *scratch) {
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	v = warp_max(v);
	if (lane == 0) scratch[warp] = v;
	__syncthreads();
	int warps = blockDim.x >> 5;
	v = (int)threadIdx.x < warps ? scratch[threadIdx.x] : neg_inf();
	if (warp == 0) v = warp_max(v);
	if (threadIdx.x == 0) scratch[0] = v;
	__syncthreads();
	v = scratch[0];
	__syncthreads();
	return v;
}

// order_key maps a float to an unsigned key with the same order (negative
// values flipped, -0 taken as +0 since they compare equal), for radix
// selection.
__device__ __forceinline__ unsigned order_key(float f) {
	unsigned u = f == 0.0f ? 0u : f32_to_bits(f);
	return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
