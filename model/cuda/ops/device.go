package ops

import (
	"fmt"

	"blipflow/model/cuda"
	"blipflow/model/cuda/kernels"
	"blipflow/model/nn"
)

// The device-level operations below queue work on the backend's stream and
// return without waiting. Call them inside Ctx.Do. Their results are new
// pool tensors the caller Releases.

const threads = 256

// grid1 sizes a grid-stride launch over n elements.
func (b *Backend) grid1(n int) cuda.Dim3 {
	blocks := (n + threads - 1) / threads
	return cuda.Dim3{X: uint32(max(1, min(blocks, 32*max(b.Ctx.SMs, 1))))}
}

func (b *Backend) launch(name string, grid cuda.Dim3, block, shared int, args ...any) error {
	return b.k.Get(name).Launch(grid, cuda.Dim3{X: uint32(block)}, shared, b.stream, args...)
}

func rowsOf(shape []int) int {
	r := 1
	for _, d := range shape[:len(shape)-1] {
		r *= d
	}
	return r
}

func withLast(shape []int, n int) []int {
	out := append([]int(nil), shape...)
	out[len(out)-1] = n
	return out
}

// Linear computes x·Wᵀ + b over the last dimension of x.
func (b *Backend) Linear(x Tensor, l *nn.Linear) (Tensor, error) {
	if x.Shape[len(x.Shape)-1] != l.In {
		return Tensor{}, fmt.Errorf("linear %s: input width %d, want %d", l.W.Name, x.Shape[len(x.Shape)-1], l.In)
	}
	w, err := b.weight(l.W)
	if err != nil {
		return Tensor{}, err
	}
	rows := rowsOf(x.Shape)
	y, err := b.alloc(withLast(x.Shape, l.Out)...)
	if err != nil {
		return Tensor{}, err
	}
	in := x.Buf.Ptr
	btype := cuda.DataF32
	var scratch Tensor
	if w.BF16 { // products take both operands in bf16
		if scratch, err = b.alloc((rows*l.In + 1) / 2); err != nil {
			b.Release(y)
			return Tensor{}, err
		}
		defer b.Release(scratch)
		n := int64(rows * l.In)
		if err := b.launch("f32_to_bf16_kernel", b.grid1(int(n)), threads, 0, x.Buf.Ptr, scratch.Buf.Ptr, n); err != nil {
			b.Release(y)
			return Tensor{}, err
		}
		in, btype = scratch.Buf.Ptr, cuda.DataBF16
	}
	atype := cuda.DataF32
	if w.BF16 {
		atype = cuda.DataBF16
	}
	// Column-major: y[Out,rows] = W[In,Out]ᵀ · x[In,rows].
	shape := cuda.GemmShape{M: l.Out, N: rows, K: l.In, TransA: true, AType: atype, BType: btype, CType: cuda.DataF32, Compute: cuda.Compute32F}
	if err := b.blas.Gemm(shape, 1, w.Buf.Ptr, in, 0, y.Buf.Ptr, b.stream); err != nil {
		b.Release(y)
		return Tensor{}, fmt.Errorf("linear %s: %w", l.W.Name, err)
	}
	if l.B != nil {
		bias, err := b.weight(l.B)
		if err != nil {
			b.Release(y)
			return Tensor{}, err
		}
		if err := b.launch("add_bias", b.grid1(rows*l.Out), threads, 0, y.Buf.Ptr, bias.Buf.Ptr, int64(rows), int32(l.Out)); err != nil {
			b.Release(y)
			return Tensor{}, err
		}
	}
	return y, nil
}

// Norm applies a layer norm or RMS norm to the last dimension.
func (b *Backend) Norm(x Tensor, n *nn.Norm) (Tensor, error) {
	if x.Shape[len(x.Shape)-1] != n.Dim {
		return Tensor{}, fmt.Errorf("norm %s: input width %d, want %d", n.Gamma.Name, x.Shape[len(x.Shape)-1], n.Dim)
	}
	g, err := b.weight(n.Gamma)
	if err != nil {
		return Tensor{}, err
	}
	y, err := b.alloc(x.Shape...)
	if err != nil {
		return Tensor{}, err
	}
	grid := cuda.Dim3{X: uint32(rowsOf(x.Shape))}
	if n.RMS {
		err = b.launch("rms_norm", grid, threads, 0, x.Buf.Ptr, y.Buf.Ptr, g.Buf.Ptr, int32(n.Dim), n.Eps)
	} else {
		var beta Tensor
		if beta, err = b.weight(n.Beta); err == nil {
			err = b.launch("layer_norm", grid, threads, 0, x.Buf.Ptr, y.Buf.Ptr, g.Buf.Ptr, beta.Buf.Ptr, int32(n.Dim), n.Eps)
		}
	}
	if err != nil {
		b.Release(y)
		return Tensor{}, err
	}
	return y, nil
}

// activationKind maps an activation to the kernel's ACT_* constant.
func activationKind(a nn.Activation) (int32, error) {
	switch a {
	case nn.GELU:
		return kernels.ActGELU, nil
	case nn.GELUTanh:
		return kernels.ActGELUTanh, nil
	case nn.QuickGELU:
		return kernels.ActQuickGELU, nil
	case nn.ReLU:
		return kernels.ActReLU, nil
	}
	return 0, fmt.Errorf("activation %q has no CUDA kernel", a)
}

// Activate applies a nonlinearity elementwise.
func (b *Backend) Activate(x Tensor, a nn.Activation) (Tensor, error) {
	kind, err := activationKind(a)
	if err != nil {
		return Tensor{}, err
	}
	y, err := b.alloc(x.Shape...)
	if err != nil {
		return Tensor{}, err
	}
	n := x.Len()
	if err := b.launch("activate", b.grid1(n), threads, 0, x.Buf.Ptr, y.Buf.Ptr, int64(n), kind); err != nil {
		b.Release(y)
		return Tensor{}, err
	}
	return y, nil
}

// Binary applies "add" or "mul" to same-shaped tensors.
func (b *Backend) Binary(kernel string, x, y Tensor) (Tensor, error) {
	if x.Len() != y.Len() {
		return Tensor{}, fmt.Errorf("%s: shapes %v and %v", kernel, x.Shape, y.Shape)
	}
	out, err := b.alloc(x.Shape...)
	if err != nil {
		return Tensor{}, err
	}
	n := x.Len()
	if err := b.launch(kernel, b.grid1(n), threads, 0, x.Buf.Ptr, y.Buf.Ptr, out.Buf.Ptr, int64(n)); err != nil {
		b.Release(out)
		return Tensor{}, err
	}
	return out, nil
}

// AttentionArgs lays out one attention call: q [B,Tq,H·D]; k and v with the
// element (b,t,h,d) at b·KB + t·KT + h·D + d; optional mask [B,Tq,Tk], bias
// [H,Tq,Tk] and per-row key counts Lens (int32 [B]). With Slots (an
// nn.KVCache slot table, int32 [B][TableStride]) step t of row b is at
// (t·SlotCount + Slots[b][t])·H·D instead.
type AttentionArgs struct {
	Q, K, V                 Tensor
	Mask, Bias, Lens, Slots *Tensor
	SlotCount, TableStride  int
	Heads, HeadDim          int
	Batch, Tq, Tk           int
	KB, KT                  int
	Scale                   float32
}

// queriesPerBlock is QB of attention.cu: warps per block, one query each.
const queriesPerBlock = 4

// Attention runs the fused flash-style attention kernel.
func (b *Backend) Attention(a AttentionArgs) (Tensor, error) {
	if a.HeadDim > kernels.MaxHeadDim {
		return Tensor{}, fmt.Errorf("attention: head size %d above the kernel's %d", a.HeadDim, kernels.MaxHeadDim)
	}
	out, err := b.alloc(a.Batch, a.Tq, a.Heads*a.HeadDim)
	if err != nil {
		return Tensor{}, err
	}
	ptr := func(t *Tensor) uintptr {
		if t == nil {
			return 0
		}
		return t.Buf.Ptr
	}
	d := a.HeadDim
	shared := 4 * (kernels.AttentionTile*(d+1) + kernels.AttentionTile*d + queriesPerBlock*d)
	grid := cuda.Dim3{X: uint32((a.Tq + queriesPerBlock - 1) / queriesPerBlock), Y: uint32(a.Heads), Z: uint32(a.Batch)}
	err = b.launch("attention", grid, 32*queriesPerBlock, shared, a.Q.Buf.Ptr, a.K.Buf.Ptr, a.V.Buf.Ptr,
		ptr(a.Mask), ptr(a.Bias), ptr(a.Lens), ptr(a.Slots), int32(a.SlotCount), int32(a.TableStride),
		out.Buf.Ptr, int32(a.Heads), int32(d), int32(a.Tq), int32(a.Tk),
		int64(a.KB), int64(a.KT), a.Scale)
	if err != nil {
		b.Release(out)
		return Tensor{}, err
	}
	return out, nil
}

// Embed looks up the rows of table for ids (int32 on the device).
func (b *Backend) Embed(ids Tensor, n int, table *nn.Weight) (Tensor, error) {
	t, err := b.weight(table)
	if err != nil {
		return Tensor{}, err
	}
	dim := table.Shape[1]
	out, err := b.alloc(n, dim)
	if err != nil {
		return Tensor{}, err
	}
	kernel := "embed_f32"
	if t.BF16 {
		kernel = "embed_bf16"
	}
	if err := b.launch(kernel, b.grid1(n*dim), threads, 0, ids.Buf.Ptr, t.Buf.Ptr, out.Buf.Ptr, int64(n), int32(dim), int32(table.Shape[0])); err != nil {
		b.Release(out)
		return Tensor{}, err
	}
	return out, nil
}

// KVWrite stores x [B,T,HD] into a row-wise cache [B,cap,HD] at each row's
// position (pos, int32 [B] on the device).
func (b *Backend) KVWrite(cache, x, pos Tensor, batch, t, hd, capacity int) error {
	return b.launch("kv_write", b.grid1(batch*t*hd), threads, 0, cache.Buf.Ptr, x.Buf.Ptr, pos.Buf.Ptr,
		int32(batch), int32(t), int32(hd), int32(capacity))
}

// KVWriteSlots stores x [B,T,HD] into a slot-table cache (nn.KVCache's
// layout [capacity][slots][HD]) at each row's position pos (int32 [B]),
// the slots from table (int32 [B][tableStride]).
func (b *Backend) KVWriteSlots(cache, x, pos, table Tensor, batch, t, hd, slots, tableStride int) error {
	return b.launch("kv_write_slots", b.grid1(batch*t*hd), threads, 0, cache.Buf.Ptr, x.Buf.Ptr, pos.Buf.Ptr, table.Buf.Ptr,
		int32(batch), int32(t), int32(hd), int32(slots), int32(tableStride))
}

// GatherRows copies slabs src[rows[i]] into dst slab i (each row floats).
func (b *Backend) GatherRows(dst, src, rows Tensor, n, row int) error {
	return b.launch("gather_rows", b.grid1(n*row), threads, 0, dst.Buf.Ptr, src.Buf.Ptr, rows.Buf.Ptr, int32(n), int64(row))
}

// Argmax writes each row's first maximum into out (int32 [rows]).
func (b *Backend) Argmax(scores Tensor, out Tensor, rows, vocab int) error {
	return b.launch("argmax_rows", cuda.Dim3{X: uint32(rows)}, kernels.SampleThreads, 0, scores.Buf.Ptr, out.Buf.Ptr, int32(vocab))
}

// Sample draws one token per row with probability softmax(scores), using
// the uniforms u [rows] drawn on the host.
func (b *Backend) Sample(scores, u, out Tensor, rows, vocab int) error {
	return b.launch("sample_rows", cuda.Dim3{X: uint32(rows)}, kernels.SampleThreads, 0, scores.Buf.Ptr, u.Buf.Ptr, out.Buf.Ptr, int32(vocab))
}

// Warp applies the sampling warpers in Hugging Face's order: temperature
// (t != 1), top-k (k > 0) and top-p (p < 1), keeping minKeep tokens.
func (b *Backend) Warp(scores Tensor, rows, vocab int, t float32, k int, p float32, minKeep int) error {
	if t != 1 {
		n := rows * vocab
		if err := b.launch("divide_scores", b.grid1(n), threads, 0, scores.Buf.Ptr, int64(n), t); err != nil {
			return err
		}
	}
	grid := cuda.Dim3{X: uint32(rows)}
	if k = min(max(k, minKeep), vocab); k > 0 && k < vocab {
		if err := b.launch("top_k_mask", grid, kernels.SampleThreads, 0, scores.Buf.Ptr, int32(vocab), int32(k)); err != nil {
			return err
		}
	}
	if p < 1 {
		return b.launch("top_p_mask", grid, kernels.SampleThreads, 0, scores.Buf.Ptr, int32(vocab), p, int32(max(minKeep, 1)))
	}
	return nil
}

// RepetitionPenalty penalises each row's distinct ids (ids int32 [rows,L],
// lens int32 [rows]).
func (b *Backend) RepetitionPenalty(scores, ids, lens Tensor, rows, vocab, l int, penalty float32) error {
	return b.launch("repetition_penalty", cuda.Dim3{X: uint32(rows)}, kernels.SampleThreads, 0, scores.Buf.Ptr, ids.Buf.Ptr, lens.Buf.Ptr,
		int32(vocab), int32(l), penalty)
}

// Sync waits for the stream's work.
func (b *Backend) Sync() error { return b.Ctx.SyncStream(b.stream) }

// SetTokens sets the listed tokens (int32 [n]) of the rows flagged in on
// (int32 [rows]) to value: EOS masked to -inf while a sequence is shorter
// than its minimum length.
func (b *Backend) SetTokens(scores, tokens, on Tensor, rows, n, vocab int, value float32) error {
	return b.launch("set_tokens", cuda.Dim3{X: uint32(rows)}, kernels.SampleThreads, 0, scores.Buf.Ptr, tokens.Buf.Ptr, int32(n), on.Buf.Ptr,
		int32(vocab), value)
}
