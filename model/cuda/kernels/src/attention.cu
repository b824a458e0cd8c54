// Fused multi-head attention, flash style: softmax(scale·q·kᵀ + mask + bias)·v
// in one pass over K and V per block of queries, with an online softmax
// (running maximum and sum), so the score matrix is never stored.
//
// Grid (ceil(Tq/QB), H, B); block QB warps, one query row per warp. Each
// key/value tile of ATTN_TILE steps is staged in shared memory once for the
// QB queries; lane j scores key j of the tile, then every lane accumulates
// its head dimensions (d = lane + 32c, HeadDim <= 32*ATTN_DCHUNKS).
//
// q and out are [B, Tq, H*D]. Element (b, t, h, d) of k and v is at
// b*kb + t*kt + h*D + d, which covers [B,Tk,H*D] (kb = Tk*H*D, kt = H*D),
// a time-major cache [Tk,B,H*D] (kb = H*D, kt = B*H*D) and a row-wise cache
// [B,cap,H*D] (kb = cap*H*D, kt = H*D). mask ([B,Tq,Tk]) and bias ([H,Tq,Tk])
// are additive and may be null. lens, when not null, gives each batch row's
// number of valid keys (the rest of Tk is skipped), so a captured decode
// graph can replay over a growing cache. slots, when not null, is a slot
// table (nn.KVCache): step t of row b is at ((t*S + slots[b*ts + t])*H*D +
// h*D + d), S slots per step, ts the table's row stride; kb and kt are then
// unused.
//
// Dynamic shared memory: (ATTN_TILE*(D+1) + ATTN_TILE*D + QB*D) floats.

#define ATTN_TILE 32
#define ATTN_DCHUNKS 4

extern "C" __global__ void attention(const float *q, const float *k, const float *v, const float *mask, const float *bias,
                                     const int *lens, const int *slots, int S, int ts, float *out, int H, int D, int Tq,
                                     int Tk, long long kb, long long kt, float scale) {
	extern __shared__ float smem[];
	const int QB = blockDim.x >> 5;
	const int KS = D + 1; // padded K rows: lanes read different banks
	float *ks = smem;
	float *vs = ks + ATTN_TILE * KS;
	float *qs = vs + ATTN_TILE * D;
	const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	const int b = blockIdx.z, h = blockIdx.y;
	const int i = blockIdx.x * QB + warp;
	const bool active = i < Tq;
	const int HD = H * D;
	const int n = lens ? imin(lens[b], Tk) : Tk;

	const float *qrow = q + ((long long)b * Tq + (active ? i : 0)) * HD + h * D;
	for (int d = lane; d < D; d += 32) qs[warp * D + d] = active ? qrow[d] : 0.0f;
	const float *mrow = mask ? mask + ((long long)b * Tq + (active ? i : 0)) * Tk : 0;
	const float *brow = bias ? bias + ((long long)h * Tq + (active ? i : 0)) * Tk : 0;

	float acc[ATTN_DCHUNKS];
	for (int c = 0; c < ATTN_DCHUNKS; c++) acc[c] = 0.0f;
	float m = neg_inf(), l = 0.0f;

	for (int t0 = 0; t0 < n; t0 += ATTN_TILE) {
		__syncthreads(); // the previous tile is no longer read
		for (int idx = threadIdx.x; idx < ATTN_TILE * D; idx += blockDim.x) {
			int r = idx / D, d = idx - r * D;
			int t = t0 + r;
			float kv = 0.0f, vv = 0.0f;
			if (t < n) {
				long long off = slots ? ((long long)t * S + slots[(long long)b * ts + t]) * HD + h * D + d
				                      : b * kb + t * kt + h * D + d;
				kv = k[off];
				vv = v[off];
			}
			ks[r * KS + d] = kv;
			vs[r * D + d] = vv;
		}
		__syncthreads();

		int t = t0 + lane;
		float s = neg_inf();
		if (active && t < n) {
			float dot = 0.0f;
			for (int d = 0; d < D; d++) dot += qs[warp * D + d] * ks[lane * KS + d];
			s = dot * scale;
			if (mrow) s += mrow[t];
			if (brow) s += brow[t];
		}
		float mnew = fmaxf(m, warp_max(s));
		float p = s == neg_inf() ? 0.0f : expf(s - mnew);
		float alpha = m == neg_inf() ? 0.0f : expf(m - mnew);
		l = l * alpha + warp_sum(p);
		for (int c = 0; c < ATTN_DCHUNKS; c++) acc[c] *= alpha;
		int last = imin(ATTN_TILE, n - t0);
		for (int j = 0; j < last; j++) {
			float pj = __shfl_sync(FULL_MASK, p, j);
			for (int c = 0; c < ATTN_DCHUNKS; c++) {
				int d = lane + 32 * c;
				if (d < D) acc[c] += pj * vs[j * D + d];
			}
		}
		m = mnew;
	}
	if (!active) return;
	float *orow = out + ((long long)b * Tq + i) * HD + h * D;
	float inv = l > 0.0f ? 1.0f / l : 0.0f;
	for (int c = 0; c < ATTN_DCHUNKS; c++) {
		int d = lane + 32 * c;
		if (d < D) orow[d] = acc[c] * inv;
	}
}
