package kernels

// Go transcriptions of the kernels' algorithms, step for step (tiles, warps
// of 32 lanes, float32 arithmetic, radix passes), checked against the CPU
// implementations the GPU must agree with. A change to a .cu file's
// algorithm should be mirrored here.

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"

	"blipflow/model/blas"
	"blipflow/model/nn"
)

// slotTable is attention.cu's optional slot layout: S slots per step, row
// b's step t in slot table[b*ts+t].
type slotTable struct {
	table []int
	S, ts int
}

// mirrorAttention is attention.cu: per (b, h, query) row, tiles of 32 keys,
// lane j scoring key j, online softmax with a running max and sum.
func mirrorAttention(q, k, v, mask, bias []float32, lens []int, B, H, D, Tq, Tk int, kb, kt int, scale float32, slots ...slotTable) []float32 {
	HD := H * D
	at := func(b, t, h int) int {
		if len(slots) > 0 {
			s := slots[0]
			return (t*s.S+s.table[b*s.ts+t])*HD + h*D
		}
		return b*kb + t*kt + h*D
	}
	out := make([]float32, B*Tq*HD)
	negInf := float32(math.Inf(-1))
	for b := 0; b < B; b++ {
		n := Tk
		if lens != nil {
			n = min(lens[b], Tk)
		}
		for h := 0; h < H; h++ {
			for i := 0; i < Tq; i++ {
				qrow := q[(b*Tq+i)*HD+h*D:]
				acc := make([]float32, D)
				m, l := negInf, float32(0)
				for t0 := 0; t0 < n; t0 += AttentionTile {
					var p [AttentionTile]float32
					tmax := negInf
					var s [AttentionTile]float32
					for lane := 0; lane < AttentionTile; lane++ {
						s[lane] = negInf
						t := t0 + lane
						if t >= n {
							continue
						}
						var dot float32
						for d := 0; d < D; d++ {
							dot += qrow[d] * k[at(b, t, h)+d]
						}
						s[lane] = dot * scale
						if mask != nil {
							s[lane] += mask[(b*Tq+i)*Tk+t]
						}
						if bias != nil {
							s[lane] += bias[(h*Tq+i)*Tk+t]
						}
						tmax = max(tmax, s[lane])
					}
					mnew := max(m, tmax)
					var sum float32
					for lane := range p {
						if s[lane] != negInf {
							p[lane] = float32(math.Exp(float64(s[lane] - mnew)))
						}
						sum += p[lane]
					}
					alpha := float32(0)
					if m != negInf {
						alpha = float32(math.Exp(float64(m - mnew)))
					}
					l = l*alpha + sum
					for d := range acc {
						acc[d] *= alpha
					}
					for j := 0; j < min(AttentionTile, n-t0); j++ {
						for d := range acc {
							acc[d] += p[j] * v[at(b, t0+j, h)+d]
						}
					}
					m = mnew
				}
				inv := float32(0)
				if l > 0 {
					inv = 1 / l
				}
				for d := range acc {
					out[(b*Tq+i)*HD+h*D+d] = acc[d] * inv
				}
			}
		}
	}
	return out
}

// cpuAttention runs the CPU op of package nn on the same inputs.
func cpuAttention(t *testing.T, q, k, v, mask, bias []float32, B, H, D, Tq, Tk int, timeMajor bool, scale float32) []float32 {
	t.Helper()
	g := nn.NewGraph(nn.NewCPU(blas.Gonum{}))
	HD := H * D
	qn := g.Input(q, B, Tq, HD)
	if timeMajor { // the CPU op takes [B,Tk,HD]
		k, v = batchMajor(k, B, Tk, HD), batchMajor(v, B, Tk, HD)
	}
	kn, vn := g.Input(k, B, Tk, HD), g.Input(v, B, Tk, HD)
	var mn, bn *G.Node
	if mask != nil {
		mn = g.Input(mask, B, Tq, Tk)
	}
	if bias != nil {
		bn = g.Input(bias, H, Tq, Tk)
	}
	out := g.Ops.Attention(qn, kn, vn, mn, bn, nn.AttentionSpec{Heads: H, HeadDim: D, Scale: scale})
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, _ := nn.Value(out)
	return data
}

// batchMajor returns x [Tk,B,HD] as [B,Tk,HD].
func batchMajor(x []float32, b, tk, hd int) []float32 {
	out := make([]float32, len(x))
	for t := 0; t < tk; t++ {
		for r := 0; r < b; r++ {
			copy(out[(r*tk+t)*hd:(r*tk+t+1)*hd], x[(t*b+r)*hd:(t*b+r+1)*hd])
		}
	}
	return out
}

func randSlice(r *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (r.Float32()*2 - 1) * scale
	}
	return s
}

func assertClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*(1+math.Abs(float64(want[i]))) || got[i] != got[i] {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestAttentionMirrorMatchesCPU(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const maskMin = -3.4028234663852886e38
	for _, tc := range []struct {
		name                  string
		B, H, D, Tq, Tk       int
		mask, bias, timeMajor bool
	}{
		{"vision (no mask, several tiles)", 2, 3, 88, 5, 77, false, false, false},
		{"causal prefill with padding mask", 3, 2, 80, 9, 9, true, false, false},
		{"decode step on a time-major cache", 4, 2, 64, 1, 40, true, false, true},
		{"t5 relative bias", 2, 4, 64, 7, 33, true, true, false},
		{"head of 128", 1, 1, 128, 3, 65, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			HD := tc.H * tc.D
			q := randSlice(r, tc.B*tc.Tq*HD, 1)
			k := randSlice(r, tc.B*tc.Tk*HD, 1)
			v := randSlice(r, tc.B*tc.Tk*HD, 1)
			var mask, bias []float32
			if tc.mask {
				mask = make([]float32, tc.B*tc.Tq*tc.Tk)
				for b := 0; b < tc.B; b++ {
					for i := 0; i < tc.Tq; i++ {
						for j := 0; j < tc.Tk; j++ {
							if j < b || (tc.Tq == tc.Tk && j > i) { // left padding of b steps, causal
								mask[(b*tc.Tq+i)*tc.Tk+j] = maskMin
							}
						}
					}
				}
			}
			if tc.bias {
				bias = randSlice(r, tc.H*tc.Tq*tc.Tk, 2)
			}
			scale := float32(1 / math.Sqrt(float64(tc.D)))
			kb, kt := tc.Tk*HD, HD
			if tc.timeMajor {
				kb, kt = HD, tc.B*HD
			}
			got := mirrorAttention(q, k, v, mask, bias, nil, tc.B, tc.H, tc.D, tc.Tq, tc.Tk, kb, kt, scale)
			want := cpuAttention(t, q, k, v, mask, bias, tc.B, tc.H, tc.D, tc.Tq, tc.Tk, tc.timeMajor, scale)
			assertClose(t, "attention", got, want, 2e-5)
		})
	}
}

// TestAttentionLensSkipUnusedCapacity checks that a row-wise cache read to
// lens[b] keys (a replayed decode graph) equals attention over exactly those
// keys.
func TestAttentionLensSkipUnusedCapacity(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const B, H, D, cap = 3, 2, 64, 50
	HD := H * D
	lens := []int{50, 17, 33}
	q := randSlice(r, B*HD, 1)
	cache := randSlice(r, B*cap*HD, 1)
	vcache := randSlice(r, B*cap*HD, 1)
	got := mirrorAttention(q, cache, vcache, nil, nil, lens, B, H, D, 1, cap, cap*HD, HD, 0.125)
	for b := 0; b < B; b++ {
		n := lens[b]
		want := cpuAttention(t, q[b*HD:(b+1)*HD], cache[b*cap*HD:(b*cap+n)*HD], vcache[b*cap*HD:(b*cap+n)*HD], nil, nil, 1, H, D, 1, n, false, 0.125)
		assertClose(t, "row", got[b*HD:(b+1)*HD], want, 2e-5)
	}
}

// TestAttentionOverSlotTable lays rows of different lengths out in a
// slot-table cache (nn.KVCache's [capacity][slots][HD], slots shuffled per
// step) and checks attention through the table equals attention over each
// row's own keys.
func TestAttentionOverSlotTable(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const B, H, D, capacity, S = 3, 2, 64, 40, 5
	HD := H * D
	lens := []int{40, 9, 23}
	q := randSlice(r, B*HD, 1)
	own := make([][]float32, B) // row b's keys then values, [len][HD] each
	table := make([]int, B*capacity)
	kc, vc := make([]float32, capacity*S*HD), make([]float32, capacity*S*HD)
	for step := 0; step < capacity; step++ {
		perm := r.Perm(S)
		for b := 0; b < B; b++ {
			table[b*capacity+step] = perm[b]
		}
	}
	for b := 0; b < B; b++ {
		own[b] = randSlice(r, 2*lens[b]*HD, 1)
		for step := 0; step < lens[b]; step++ {
			off := (step*S + table[b*capacity+step]) * HD
			copy(kc[off:off+HD], own[b][step*HD:(step+1)*HD])
			copy(vc[off:off+HD], own[b][(lens[b]+step)*HD:(lens[b]+step+1)*HD])
		}
	}
	got := mirrorAttention(q, kc, vc, nil, nil, lens, B, H, D, 1, capacity, 0, 0, 0.125, slotTable{table: table, S: S, ts: capacity})
	for b := 0; b < B; b++ {
		n := lens[b]
		want := cpuAttention(t, q[b*HD:(b+1)*HD], own[b][:n*HD], own[b][n*HD:], nil, nil, 1, H, D, 1, n, false, 0.125)
		assertClose(t, "row", got[b*HD:(b+1)*HD], want, 2e-5)
	}
}

func TestBF16RoundsToNearestEven(t *testing.T) {
	for _, tc := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above the tie
		{0x7f7fffff, 0x7f80}, // max float rounds to +inf
		{0xff800000, 0xff80}, // -inf
		{0x7fc00001, 0x7fc0}, // NaN stays NaN
		{0x7f800001, 0x7fc0}, // signalling NaN becomes quiet, not inf
		{0x00000001, 0x0000}, // smallest denormal
	} {
		if got := ToBF16(math.Float32frombits(tc.in)); got != tc.want {
			t.Errorf("bf16(%#08x) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		f := (r.Float32()*2 - 1) * 1000
		back := FromBF16(ToBF16(f))
		if rel := math.Abs(float64(back-f)) / math.Abs(float64(f)); rel > 1.0/256 {
			t.Fatalf("bf16 round trip of %v gave %v", f, back)
		}
	}
}

// orderKey is order_key in common.cuh.
func orderKey(f float32) uint32 {
	u := math.Float32bits(f)
	if f == 0 {
		u = 0
	}
	if u&0x80000000 != 0 {
		return ^u
	}
	return u | 0x80000000
}

// mirrorKthLargestKey is kth_largest_key in sample.cu.
func mirrorKthLargestKey(row []float32, k int) uint32 {
	var prefix, mask uint32
	for shift := 24; shift >= 0; shift -= 8 {
		var hist [256]int
		for _, s := range row {
			if key := orderKey(s); key&mask == prefix {
				hist[(key>>shift)&255]++
			}
		}
		bucket := 0
		for b := 255; b >= 0; b-- {
			if hist[b] >= k {
				bucket = b
				break
			}
			k -= hist[b]
		}
		prefix |= uint32(bucket) << shift
		mask |= 255 << shift
	}
	return prefix
}

// mirrorTopK is top_k_mask.
func mirrorTopK(row []float32, k int) {
	key := mirrorKthLargestKey(row, k)
	for i, s := range row {
		if orderKey(s) < key {
			row[i] = float32(math.Inf(-1))
		}
	}
}

// referenceTopK is generate's TopKLogitsWarper: the k-th largest by sorting.
func referenceTopK(row []float32, k int) {
	sorted := slices.Clone(row)
	slices.Sort(sorted)
	threshold := sorted[len(sorted)-k]
	for i, s := range row {
		if s < threshold {
			row[i] = float32(math.Inf(-1))
		}
	}
}

// mirrorTopP is top_p_mask (with exact, ordered sums where the kernel adds
// bucket masses atomically).
func mirrorTopP(row []float32, p float32, minKeep int) {
	negInf := float32(math.Inf(-1))
	cut := 1 - p
	mx := negInf
	for _, s := range row {
		mx = max(mx, s)
	}
	var total float32
	for _, s := range row {
		total += float32(math.Exp(float64(s - mx)))
	}
	prob := func(s float32) float32 { return float32(math.Exp(float64(s-mx))) / total }
	keep := mirrorKthLargestKey(row, minKeep)
	var prefix, mask uint32
	var below float32
	for shift := 24; shift >= 0; shift -= 8 {
		var mass [256]float32
		for _, s := range row {
			if key := orderKey(s); key&mask == prefix {
				mass[(key>>shift)&255] += prob(s)
			}
		}
		bucket, lastFull := -1, 0
		for b := 0; b < 256; b++ {
			if mass[b] <= 0 {
				continue
			}
			lastFull = b
			if below+mass[b] > cut {
				bucket = b
				break
			}
			below += mass[b]
		}
		if bucket < 0 {
			bucket = lastFull
		}
		prefix |= uint32(bucket) << shift
		mask |= 255 << shift
	}
	orig := slices.Clone(row)
	for i, s := range orig {
		if key := orderKey(s); key < prefix && key < keep {
			row[i] = negInf
		}
	}
	run := below
	for i, s := range orig {
		if orderKey(s) != prefix {
			continue
		}
		run += prob(s)
		if run > cut {
			break
		}
		if orderKey(s) < keep {
			row[i] = negInf
		}
	}
}

// referenceTopP is generate's TopPLogitsWarper (stable ascending sort,
// remove while the cumulative probability stays at or below 1-p).
func referenceTopP(row []float32, p float64, minKeep int) {
	negInf := float32(math.Inf(-1))
	order := make([]int, 0, len(row))
	for i, s := range row {
		if s != negInf {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case row[a] < row[b]:
			return -1
		case row[a] > row[b]:
			return 1
		}
		return 0
	})
	mx := negInf
	for _, s := range row {
		mx = max(mx, s)
	}
	probs := make([]float64, len(row))
	var total float64
	for i, s := range row {
		probs[i] = math.Exp(float64(s - mx))
		total += probs[i]
	}
	var cum float64
	for rank, i := range order {
		cum += probs[i] / total
		if cum > 1-p || rank >= len(order)-minKeep {
			break
		}
		row[i] = negInf
	}
}

func TestTopKAndTopPMirrorsMatchTheCPUWarpers(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for trial := range 200 {
		v := 50 + r.IntN(2000)
		row := randSlice(r, v, 8)
		if trial%3 == 0 { // ties and negative zero
			for i := range row {
				row[i] = float32(math.Round(float64(row[i])))
			}
		}
		k := 1 + r.IntN(v-1)
		got, want := slices.Clone(row), slices.Clone(row)
		mirrorTopK(got, k)
		referenceTopK(want, k)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d: top-k(%d) differs", trial, k)
		}
		if trial%3 == 0 {
			continue // float32 vs float64 sums may disagree exactly at a tie boundary
		}
		p := 0.05 + 0.9*r.Float64()
		got, want = slices.Clone(row), slices.Clone(row)
		mirrorTopP(got, float32(p), 1)
		referenceTopP(want, p, 1)
		if diff := countDiff(got, want); diff > 1 {
			t.Fatalf("trial %d: top-p(%.3f) differs on %d tokens", trial, p, diff)
		}
	}
}

func countDiff(a, b []float32) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// mirrorSample is sample_rows: chunked weights, the first token whose
// cumulative weight passes u·total.
func mirrorSample(row []float32, u float32, threads int) int {
	negInf := float32(math.Inf(-1))
	mx := negInf
	for _, s := range row {
		mx = max(mx, s)
	}
	chunk := (len(row) + threads - 1) / threads
	sums := make([]float32, threads)
	w := func(i int) float32 { return float32(math.Exp(float64(row[i] - mx))) }
	for c := range sums {
		for i := c * chunk; i < min(len(row), (c+1)*chunk); i++ {
			sums[c] += w(i)
		}
	}
	var total float32
	for _, s := range sums {
		total += s
	}
	if !(total > 0) {
		return -1
	}
	target := u * total
	last := -1
	for c := range sums {
		if sums[c] <= 0 {
			continue
		}
		lo, hi := c*chunk, min(len(row), (c+1)*chunk)
		if target >= sums[c] && c != threads-1 {
			target -= sums[c]
			for i := hi - 1; i >= lo; i-- {
				if w(i) > 0 {
					last = i
					break
				}
			}
			continue
		}
		for i := lo; i < hi; i++ {
			if w(i) <= 0 {
				continue
			}
			last = i
			if target < w(i) {
				return i
			}
			target -= w(i)
		}
	}
	return last
}

func TestSampleMirrorDrawsWithSoftmaxProbabilities(t *testing.T) {
	row := []float32{0, float32(math.Log(3)), float32(math.Inf(-1)), float32(math.Log(4))} // weights 1, 3, 0, 4
	for _, tc := range []struct {
		u    float32
		want int
	}{{0, 0}, {0.124, 0}, {0.126, 1}, {0.49, 1}, {0.51, 3}, {0.999, 3}} {
		for _, threads := range []int{1, 2, 256} {
			if got := mirrorSample(row, tc.u, threads); got != tc.want {
				t.Errorf("u=%v threads=%d: token %d, want %d", tc.u, threads, got, tc.want)
			}
		}
	}
	if got := mirrorSample([]float32{float32(math.Inf(-1))}, 0.5, 256); got != -1 {
		t.Errorf("all -inf gave %d, want -1", got)
	}
	r := rand.New(rand.NewPCG(9, 10))
	big := randSlice(r, 50272, 3)
	counts := map[int]int{}
	for range 2000 {
		counts[mirrorSample(big, r.Float32(), SampleThreads)]++
	}
	if len(counts) < 500 {
		t.Fatalf("2000 draws over 50272 tokens hit only %d distinct tokens", len(counts))
	}
}
