// Activations and elementwise arithmetic, grid-stride over n elements.

#define ACT_GELU 0
#define ACT_GELU_TANH 1
#define ACT_QUICK_GELU 2
#define ACT_RELU 3

__device__ __forceinline__ float activation(float v, int kind) {
	switch (kind) {
	case ACT_GELU:
		return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
	case ACT_GELU_TANH:
		return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
	case ACT_QUICK_GELU:
		return v / (1.0f + expf(-1.702f * v));
	default:
		return v < 0.0f ? 0.0f : v;
	}
}

extern "C" __global__ void activate(const float *x, float *y, long long n, int kind) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		y[i] = activation(x[i], kind);
	}
}

extern "C" __global__ void add(const float *a, const float *b, float *y, long long n) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		y[i] = a[i] + b[i];
	}
}

extern "C" __global__ void mul(const float *a, const float *b, float *y, long long n) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		y[i] = a[i] * b[i];
	}
}

// add_bias adds bias[cols] to every row of y[rows, cols] in place.
extern "C" __global__ void add_bias(float *y, const float *bias, long long rows, int cols) {
	long long n = rows * cols;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		y[i] += bias[i % cols];
	}
}
