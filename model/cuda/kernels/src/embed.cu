// Embedding lookups: out[i, :] = table[ids[i], :]. Ids outside the table
// give a row of NaN, so the mistake shows instead of passing silently.

extern "C" __global__ void embed_bf16(const int *ids, const bf16 *table, float *out, long long n, int dim, int vocab) {
	long long total = n * dim;
	for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total; e += (long long)gridDim.x * blockDim.x) {
		long long i = e / dim;
		int id = ids[i];
		out[e] = (id >= 0 && id < vocab) ? bf16_to_f32(table[(long long)id * dim + (e - i * dim)]) : bits_to_f32(0x7fc00000u);
	}
}

extern "C" __global__ void embed_f32(const int *ids, const float *table, float *out, long long n, int dim, int vocab) {
	long long total = n * dim;
	for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total; e += (long long)gridDim.x * blockDim.x) {
		long long i = e / dim;
		int id = ids[i];
		out[e] = (id >= 0 && id < vocab) ? table[(long long)id * dim + (e - i * dim)] : bits_to_f32(0x7fc00000u);
	}
}
