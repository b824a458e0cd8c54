// bf16 <-> fp32 conversions, grid-stride over n elements.

extern "C" __global__ void f32_to_bf16_kernel(const float *x, bf16 *y, long long n) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		y[i] = f32_to_bf16(x[i]);
	}
}

extern "C" __global__ void bf16_to_f32_kernel(const bf16 *x, float *y, long long n) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		y[i] = bf16_to_f32(x[i]);
	}
}
