// The KV cache is row-wise, [B, cap, HD] per layer: each batch row owns a
// contiguous slab, so rows can leave and new rows take their slots.

// kv_write stores x [B, T, HD] at steps pos[b]..pos[b]+T-1 of each row's slab.
// pos lives in device memory so a captured decode graph replays unchanged.
extern "C" __global__ void kv_write(float *cache, const float *x, const int *pos, int B, int T, int HD, int cap) {
	long long n = (long long)B * T * HD;
	for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
		int j = (int)(e % HD);
		long long bt = e / HD;
		int t = (int)(bt % T), b = (int)(bt / T);
		int p = pos[b] + t;
		if (p < cap) cache[((long long)b * cap + p) * HD + j] = x[e];
	}
}

// gather_rows copies slab src_rows[r] of src into slab r of dst (each slab
// `row` floats): the cache's Select (drop finished rows, reorder beams) and
// the merge of newly prefilled rows into free slots.
extern "C" __global__ void gather_rows(float *dst, const float *src, const int *src_rows, int rows, long long row) {
	long long n = (long long)rows * row;
	for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
		long long r = e / row;
		dst[e] = src[(long long)src_rows[r] * row + (e - r * row)];
	}
}

// kv_write_slots stores x [B, T, HD] in a slot-table cache (nn.KVCache):
// step pos[b]+t of row b goes to ((pos[b]+t)*S + slots[b*ts + pos[b]+t])*HD.
extern "C" __global__ void kv_write_slots(float *cache, const float *x, const int *pos, const int *slots, int B, int T, int HD,
                                          int S, int ts) {
	long long n = (long long)B * T * HD;
	for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
		int j = (int)(e % HD);
		long long bt = e / HD;
		int t = (int)(bt % T), b = (int)(bt / T);
		int p = pos[b] + t;
		cache[((long long)p * S + slots[(long long)b * ts + p]) * HD + j] = x[e];
	}
}
