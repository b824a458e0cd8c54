// Layer norm and T5's RMS norm over the last dimension: one block per row.

extern "C" __global__ void layer_norm(const float *x, float *y, const float *gamma, const float *beta, int dim, float eps) {
	__shared__ float scratch[32];
	const float *row = x + (long long)blockIdx.x * dim;
	float *out = y + (long long)blockIdx.x * dim;
	float s = 0.0f;
	for (int i = threadIdx.x; i < dim; i += blockDim.x) s += row[i];
	float mean = block_sum(s, scratch) / dim;
	float ss = 0.0f;
	for (int i = threadIdx.x; i < dim; i += blockDim.x) {
		float c = row[i] - mean;
		ss += c * c;
	}
	float inv = 1.0f / sqrtf(block_sum(ss, scratch) / dim + eps);
	for (int i = threadIdx.x; i < dim; i += blockDim.x) out[i] = (row[i] - mean) * inv * gamma[i] + beta[i];
}

extern "C" __global__ void rms_norm(const float *x, float *y, const float *gamma, int dim, float eps) {
	__shared__ float scratch[32];
	const float *row = x + (long long)blockIdx.x * dim;
	float *out = y + (long long)blockIdx.x * dim;
	float ss = 0.0f;
	for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += row[i] * row[i];
	float inv = 1.0f / sqrtf(block_sum(ss, scratch) / dim + eps);
	for (int i = threadIdx.x; i < dim; i += blockDim.x) out[i] = gamma[i] * (row[i] * inv);
}
