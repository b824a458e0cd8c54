// Logits processors and token choice on the GPU, so a decode step needs no
// copy of the logits to the host: one block (SAMPLE_THREADS threads) per row
// of scores [rows, V], in Hugging Face's order (repetition penalty, EOS
// masking, temperature, top-k, top-p, then argmax or a draw).

#define SAMPLE_THREADS 256

__device__ __forceinline__ bool better(float a, int ai, float b, int bi) {
	if (is_nan(a) || is_nan(b)) return is_nan(a) && (!is_nan(b) || ai < bi);
	return a > b || (a == b && ai < bi);
}

// argmax_rows writes each row's first maximum (the first NaN if any).
extern "C" __global__ void argmax_rows(const float *scores, int *out, int V) {
	__shared__ float bv[SAMPLE_THREADS];
	__shared__ int bi[SAMPLE_THREADS];
	const float *row = scores + (long long)blockIdx.x * V;
	float best = neg_inf();
	int at = V;
	for (int i = threadIdx.x; i < V; i += blockDim.x) {
		if (at == V || better(row[i], i, best, at)) {
			best = row[i];
			at = i;
		}
	}
	bv[threadIdx.x] = best;
	bi[threadIdx.x] = at;
	__syncthreads();
	for (int half = blockDim.x / 2; half > 0; half >>= 1) {
		if ((int)threadIdx.x < half) {
			int o = threadIdx.x + half;
			if (bi[o] < V && (bi[threadIdx.x] == V || better(bv[o], bi[o], bv[threadIdx.x], bi[threadIdx.x]))) {
				bv[threadIdx.x] = bv[o];
				bi[threadIdx.x] = bi[o];
			}
		}
		__syncthreads();
	}
	if (threadIdx.x == 0) out[blockIdx.x] = bi[0] == V ? 0 : bi[0];
}

// repetition_penalty penalises each distinct token of the row's ids
// (ids [rows, L], lens[rows] used) once: negative scores multiplied by
// penalty, others divided.
extern "C" __global__ void repetition_penalty(float *scores, const int *ids, const int *lens, int V, int L, float penalty) {
	float *row = scores + (long long)blockIdx.x * V;
	const int *seq = ids + (long long)blockIdx.x * L;
	int n = imin(lens[blockIdx.x], L);
	for (int j = threadIdx.x; j < n; j += blockDim.x) {
		int id = seq[j];
		bool first = id >= 0 && id < V;
		for (int i = 0; i < j && first; i++) first = seq[i] != id;
		if (first) {
			float s = row[id];
			row[id] = s < 0.0f ? s * penalty : s / penalty;
		}
	}
}

// set_tokens sets the listed tokens of the rows flagged in on[rows] to value
// (-inf for EOS while a sequence is shorter than its minimum length).
extern "C" __global__ void set_tokens(float *scores, const int *tokens, int n, const int *on, int V, float value) {
	if (!on[blockIdx.x]) return;
	for (int j = threadIdx.x; j < n; j += blockDim.x) {
		int id = tokens[j];
		if (id >= 0 && id < V) scores[(long long)blockIdx.x * V + id] = value;
	}
}

// divide_scores divides every score by t (temperature).
extern "C" __global__ void divide_scores(float *scores, long long n, float t) {
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
		scores[i] /= t;
	}
}

// kth_largest_key finds the order key of the row's k-th largest score by a
// 4-pass radix selection (8 bits a pass); every thread gets it.
__device__ unsigned kth_largest_key(const float *row, int V, int k, unsigned *hist, unsigned *shared) {
	unsigned prefix = 0, mask = 0;
	for (int shift = 24; shift >= 0; shift -= 8) {
		for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
		__syncthreads();
		for (int i = threadIdx.x; i < V; i += blockDim.x) {
			unsigned key = order_key(row[i]);
			if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
		}
		__syncthreads();
		if (threadIdx.x == 0) {
			int bucket = 0;
			for (int bkt = 255; bkt >= 0; bkt--) {
				if ((int)hist[bkt] >= k) {
					bucket = bkt;
					break;
				}
				k -= hist[bkt];
			}
			shared[0] = (unsigned)bucket;
			shared[1] = (unsigned)k;
		}
		__syncthreads();
		prefix |= shared[0] << shift;
		mask |= 255u << shift;
		k = (int)shared[1];
		__syncthreads();
	}
	return prefix;
}

// top_k_mask sets every score below the row's k-th largest to -inf (ties
// kept); k is already raised to min_tokens_to_keep and below V.
extern "C" __global__ void top_k_mask(float *scores, int V, int k) {
	__shared__ unsigned hist[256];
	__shared__ unsigned shared[2];
	float *row = scores + (long long)blockIdx.x * V;
	unsigned key = kth_largest_key(row, V, k, hist, shared);
	for (int i = threadIdx.x; i < V; i += blockDim.x) {
		if (order_key(row[i]) < key) row[i] = neg_inf();
	}
}

// top_p_mask removes, in ascending order of score (ties in index order),
// the tokens whose cumulative probability stays at or below 1-p, keeping at
// least min_keep of the largest.
extern "C" __global__ void top_p_mask(float *scores, int V, float p, int min_keep) {
	__shared__ float mass[256];
	__shared__ unsigned hist[256];
	__shared__ unsigned shared[2];
	__shared__ float scratch[32];
	__shared__ float below_s;
	float *row = scores + (long long)blockIdx.x * V;
	const float cut = 1.0f - p;
	float mx = neg_inf();
	for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, row[i]);
	mx = block_max(mx, scratch);
	if (mx == neg_inf()) return;
	float sum = 0.0f;
	for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(row[i] - mx);
	const float total = block_sum(sum, scratch);
	const unsigned keep = kth_largest_key(row, V, min_keep, hist, shared);

	unsigned prefix = 0, mask = 0;
	float below = 0.0f;
	for (int shift = 24; shift >= 0; shift -= 8) {
		for (int i = threadIdx.x; i < 256; i += blockDim.x) mass[i] = 0.0f;
		__syncthreads();
		for (int i = threadIdx.x; i < V; i += blockDim.x) {
			unsigned key = order_key(row[i]);
			if ((key & mask) == prefix) atomicAdd(&mass[(key >> shift) & 255u], expf(row[i] - mx) / total);
		}
		__syncthreads();
		if (threadIdx.x == 0) {
			int bucket = -1, lastFull = 0;
			for (int bkt = 0; bkt < 256; bkt++) {
				if (mass[bkt] <= 0.0f) continue;
				lastFull = bkt;
				if (below + mass[bkt] > cut) {
					bucket = bkt;
					break;
				}
				below += mass[bkt];
			}
			if (bucket < 0) bucket = lastFull; // rounding kept the total at or below cut
			shared[0] = (unsigned)bucket;
			below_s = below;
		}
		__syncthreads();
		prefix |= shared[0] << shift;
		mask |= 255u << shift;
		below = below_s;
		__syncthreads();
	}
	// prefix is the key at which the cumulative mass passes cut: lower keys
	// go, higher keys stay, and tokens at that key go in index order while
	// the running total stays at or below cut.
	for (int i = threadIdx.x; i < V; i += blockDim.x) {
		unsigned key = order_key(row[i]);
		if (key < prefix && key < keep) row[i] = neg_inf();
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		float run = below;
		for (int i = 0; i < V; i++) {
			unsigned key = order_key(row[i]);
			if (key != prefix) continue;
			run += expf(row[i] - mx) / total;
			if (run > cut) break;
			if (key < keep) row[i] = neg_inf();
		}
	}
}

// sample_rows draws one token per row with probability softmax(scores),
// using the uniform u[row] in [0,1) from the host's generator: the first
// token whose cumulative weight passes u·total, in index order. A row with
// no positive weight gets -1.
extern "C" __global__ void sample_rows(const float *scores, const float *u, int *out, int V) {
	__shared__ float sums[SAMPLE_THREADS];
	__shared__ float scratch[32];
	const float *row = scores + (long long)blockIdx.x * V;
	float mx = neg_inf();
	for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, row[i]);
	mx = block_max(mx, scratch);
	const int chunk = (V + blockDim.x - 1) / blockDim.x;
	const int lo = threadIdx.x * chunk, hi = imin(V, lo + chunk);
	float s = 0.0f;
	if (mx != neg_inf()) {
		for (int i = lo; i < hi; i++) s += expf(row[i] - mx);
	}
	sums[threadIdx.x] = s;
	__syncthreads();
	if (threadIdx.x != 0) return;
	float total = 0.0f;
	for (int c = 0; c < (int)blockDim.x; c++) total += sums[c];
	if (!(total > 0.0f)) {
		out[blockIdx.x] = -1;
		return;
	}
	float target = u[blockIdx.x] * total;
	int last = -1;
	for (int c = 0; c < (int)blockDim.x; c++) {
		if (sums[c] <= 0.0f) continue;
		int clo = c * chunk, chi = imin(V, clo + chunk);
		if (target >= sums[c] && c != (int)blockDim.x - 1) {
			target -= sums[c];
			for (int i = chi - 1; i >= clo; i--) {
				if (expf(row[i] - mx) > 0.0f) {
					last = i;
					break;
				}
			}
			continue;
		}
		for (int i = clo; i < chi; i++) {
			float w = expf(row[i] - mx);
			if (w <= 0.0f) continue;
			last = i;
			if (target < w) {
				out[blockIdx.x] = i;
				return;
			}
			target -= w;
		}
	}
	out[blockIdx.x] = last;
}
