// The glue between the heavy ops: column splits (fused QKV), step slices,
// step concatenation and the splice of the projected queries into the
// prompt embeddings.

// split_columns copies columns [c0, c0+w) of x [rows, cols] into y [rows, w].
extern "C" __global__ void split_columns(const float *x, float *y, long long rows, int cols, int c0, int w) {
	long long n = rows * w;
	for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
		long long r = e / w;
		y[e] = x[r * cols + c0 + (e - r * w)];
	}
}

// slice_steps copies steps [t0, t0+len) of x [B, T, D] into y [B, len, D].
extern "C" __global__ void slice_steps(const float *x, float *y, int B, int T, int D, int t0, int len) {
	long long n = (long long)B * len * D;
	for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
		int d = (int)(e % D);
		long long bt = e / D;
		int t = (int)(bt % len), b = (int)(bt / len);
		y[e] = x[((long long)b * T + t0 + t) * D + d];
	}
}

// concat_steps joins a [B, Ta, D] and b [B, Tb, D] into y [B, Ta+Tb, D].
extern "C" __global__ void concat_steps(const float *a, const float *b, float *y, int B, int Ta, int Tb, int D) {
	int T = Ta + Tb;
	long long n = (long long)B * T * D;
	for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
		int d = (int)(e % D);
		long long bt = e / D;
		int t = (int)(bt % T), r = (int)(bt / T);
		y[e] = t < Ta ? a[((long long)r * Ta + t) * D + d] : b[((long long)r * Tb + t - Ta) * D + d];
	}
}

// splice_queries writes y [B, T, D] = x, except that position t of row r
// takes query src[r*T+t] of q [B, Q, D] where src is not negative (the
// <image> token positions).
extern "C" __global__ void splice_queries(const float *x, const float *q, const int *src, float *y, int B, int T, int Q, int D) {
	long long n = (long long)B * T * D;
	for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
		int d = (int)(e % D);
		long long bt = e / D;
		int r = (int)(bt / T);
		int s = src[bt];
		y[e] = s >= 0 ? q[((long long)r * Q + s) * D + d] : x[e];
	}
}
