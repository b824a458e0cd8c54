// Package ops is the CUDA implementation of the model's operations: a
// Backend holding one device's context, kernels, cuBLASLt handle, the
// weights uploaded once, and device-level operations on device tensors;
// and an adapter implementing nn.Ops over it for the Gorgonia graphs.
//
// Matrix products run in cuBLASLt with fp32 accumulation: bf16 weights and
// inputs in BF16 mode (the Q-Former's weights stay fp32), fp32 with TF32
// off in FP32 mode (for parity with the CPU). T5 runs in bf16, never fp16.
// Activations are fp32 on the device.
//
// THIS CODE HAS NOT RUN ON A GPU YET (see the README's GPU section): it
// compiles and fails cleanly without a driver.
package ops

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"blipflow/model/cuda"
	"blipflow/model/cuda/kernels"
	"blipflow/model/nn"
)

// Mode is the precision of the matrix products.
type Mode string

// Modes.
const (
	// BF16 stores the large matrices in bf16 and multiplies with fp32
	// accumulation.
	BF16 Mode = "bf16"
	// FP32 keeps everything in fp32 with TF32 off: the parity mode.
	FP32 Mode = "fp32"
)

// ParseMode reads "bf16" or "fp32" ("" is bf16).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "", "bf16", "auto":
		return BF16, nil
	case "fp32":
		return FP32, nil
	}
	return "", fmt.Errorf("cuda dtype %q: want bf16 or fp32", s)
}

// Tensor is a float32 (or, for weights, bf16) array in device memory.
type Tensor struct {
	Buf   cuda.Buffer
	Shape []int
	// BF16 says the elements are 2-byte bfloat16.
	BF16 bool
}

// Len is the number of elements.
func (t Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Backend runs the model's operations on one GPU.
type Backend struct {
	Ctx  *cuda.Context
	Mode Mode

	k      *kernels.Set
	blas   *cuda.Blas
	stream cuda.Stream
	pool   *pool

	mu      sync.Mutex // serialises use of the stream and staging buffer
	weights map[*nn.Weight]Tensor
	staging cuda.HostBuffer
	// arena, while a decode graph is captured, owns every allocation.
	arena *arena
}

// Open opens device ordinal, compiles (or loads from the cache) the
// kernels and creates the cuBLASLt handle. Without a driver, a GPU or the
// libraries it fails with one line naming what is missing.
func Open(ordinal int, mode Mode) (*Backend, error) {
	if err := cuda.Available(); err != nil {
		return nil, err
	}
	c, err := cuda.Open(ordinal)
	if err != nil {
		return nil, err
	}
	b := &Backend{Ctx: c, Mode: mode, weights: map[*nn.Weight]Tensor{}}
	err = c.Do(func() error {
		var err error
		if b.k, err = kernels.Load(c); err != nil {
			return err
		}
		if b.blas, err = c.NewBlas(); err != nil {
			return err
		}
		if b.stream, err = c.NewStream(); err != nil {
			return err
		}
		b.pool = newPool(c)
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("cuda device %d: %w", ordinal, err)
	}
	return b, nil
}

// Name describes the backend.
func (b *Backend) Name() string {
	return fmt.Sprintf("cuda %s (%s, %s, %d MiB)", b.Mode, b.Ctx.Name, b.Ctx.Arch(), b.Ctx.TotalMemory>>20)
}

// Close frees the weights, buffers and handles.
func (b *Backend) Close() error {
	if b.Ctx == nil {
		return nil
	}
	b.Ctx.Do(func() error {
		for _, t := range b.weights {
			b.Ctx.Free(t.Buf)
		}
		if b.pool != nil {
			b.pool.drain()
		}
		if b.blas != nil {
			b.blas.Close()
		}
		if b.stream != 0 {
			b.Ctx.DestroyStream(b.stream)
		}
		b.Ctx.FreeHost(b.staging)
		if b.k != nil {
			b.k.Module.Unload()
		}
		return nil
	})
	err := b.Ctx.Close()
	b.Ctx = nil
	return err
}

// keepsFP32 says which weights stay fp32 in BF16 mode: vectors (biases,
// norms), and the Q-Former, whose small products gain nothing from bf16.
func keepsFP32(w *nn.Weight) bool {
	return len(w.Shape) != 2 || strings.HasPrefix(w.Name, "qformer.") || w.Name == "query_tokens"
}

// weight returns w on the device, uploading it the first time (bf16 in BF16
// mode unless keepsFP32). Call inside Ctx.Do.
func (b *Backend) weight(w *nn.Weight) (Tensor, error) {
	if t, ok := b.weights[w]; ok {
		return t, nil
	}
	data := w.Data
	if data == nil && w.Half != nil { // a weight loaded as bf16 for the CPU: widen it row by row
		data = make([]float32, w.Len())
		cols := w.Len() / w.Shape[0]
		for r := 0; r < w.Shape[0]; r++ {
			w.Row(r, data[r*cols:(r+1)*cols])
		}
	}
	if len(data) == 0 {
		return Tensor{}, fmt.Errorf("weight %s has no data", w.Name)
	}
	half := b.Mode == BF16 && !keepsFP32(w)
	var host []byte
	if half {
		h := make([]uint16, len(data))
		for i, v := range data {
			h[i] = kernels.ToBF16(v)
		}
		host = unsafe.Slice((*byte)(unsafe.Pointer(&h[0])), 2*len(h))
	} else {
		host = unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data))
	}
	buf, err := b.Ctx.Alloc(uint64(len(host)))
	if err != nil {
		return Tensor{}, fmt.Errorf("weight %s: %w", w.Name, err)
	}
	if err := b.upload(buf.Ptr, host); err != nil {
		b.Ctx.Free(buf)
		return Tensor{}, fmt.Errorf("weight %s: %w", w.Name, err)
	}
	t := Tensor{Buf: buf, Shape: append([]int(nil), w.Shape...), BF16: half}
	b.weights[w] = t
	return t, nil
}

// stage returns the pinned staging buffer grown to n bytes.
func (b *Backend) stage(n int) (cuda.HostBuffer, error) {
	if uint64(n) <= b.staging.Size {
		return b.staging, nil
	}
	b.Ctx.FreeHost(b.staging)
	size := uint64(max(n, 1<<20))
	h, err := b.Ctx.AllocHost(size)
	if err != nil {
		b.staging = cuda.HostBuffer{}
		return cuda.HostBuffer{}, err
	}
	b.staging = h
	return h, nil
}

// upload copies host bytes to dst through the pinned staging buffer, in
// chunks, waiting for each.
func (b *Backend) upload(dst uintptr, host []byte) error {
	const chunk = 64 << 20
	st, err := b.stage(min(len(host), chunk))
	if err != nil {
		return err
	}
	for off := 0; off < len(host); off += chunk {
		n := min(chunk, len(host)-off)
		copy(st.Bytes(), host[off:off+n])
		if err := b.Ctx.CopyToDevice(dst+uintptr(off), unsafe.Pointer(&st.Bytes()[0]), uint64(n), b.stream); err != nil {
			return err
		}
		if err := b.Ctx.SyncStream(b.stream); err != nil {
			return err
		}
	}
	return nil
}

// download copies n bytes from src into host through the staging buffer.
func (b *Backend) download(host []byte, src uintptr) error {
	const chunk = 64 << 20
	st, err := b.stage(min(len(host), chunk))
	if err != nil {
		return err
	}
	for off := 0; off < len(host); off += chunk {
		n := min(chunk, len(host)-off)
		if err := b.Ctx.CopyToHost(unsafe.Pointer(&st.Bytes()[0]), src+uintptr(off), uint64(n), b.stream); err != nil {
			return err
		}
		if err := b.Ctx.SyncStream(b.stream); err != nil {
			return err
		}
		copy(host[off:off+n], st.Bytes()[:n])
	}
	return nil
}

// Upload copies float32 host data to a new device tensor. Call inside
// Ctx.Do.
func (b *Backend) Upload(data []float32, shape ...int) (Tensor, error) {
	t, err := b.alloc(shape...)
	if err != nil {
		return Tensor{}, err
	}
	if len(data) > 0 {
		if err := b.upload(t.Buf.Ptr, unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data))); err != nil {
			b.Release(t)
			return Tensor{}, err
		}
	}
	return t, nil
}

// UploadInts copies int ids to a new int32 device buffer.
func (b *Backend) UploadInts(ids []int) (Tensor, error) {
	t, err := b.alloc(len(ids))
	if err != nil {
		return Tensor{}, err
	}
	v := make([]int32, len(ids))
	for i, id := range ids {
		v[i] = int32(id)
	}
	if len(v) > 0 {
		if err := b.upload(t.Buf.Ptr, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))); err != nil {
			b.Release(t)
			return Tensor{}, err
		}
	}
	return t, nil
}

// Download copies a float32 device tensor to the host.
func (b *Backend) Download(t Tensor) ([]float32, error) {
	out := make([]float32, t.Len())
	if len(out) == 0 {
		return out, nil
	}
	err := b.download(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*len(out)), t.Buf.Ptr)
	return out, err
}

// alloc takes a float32 tensor of the shape from the pool, or from the
// arena of the graph being captured.
func (b *Backend) alloc(shape ...int) (Tensor, error) {
	t := Tensor{Shape: append([]int(nil), shape...)}
	if b.arena != nil {
		buf, err := b.arena.alloc(uint64(4 * max(t.Len(), 1)))
		t.Buf = buf
		return t, err
	}
	buf, err := b.pool.get(uint64(4 * max(t.Len(), 1)))
	if err != nil {
		return Tensor{}, err
	}
	t.Buf = buf
	return t, nil
}

// Release returns a tensor's memory to the pool.
func (b *Backend) Release(ts ...Tensor) {
	for _, t := range ts {
		if t.Buf.Ptr != 0 && !b.arena.owns(t.Buf.Ptr) {
			b.pool.put(t.Buf)
		}
	}
}

// MemInfo reports the device's free and total memory.
func (b *Backend) MemInfo() (free, total uint64, err error) { return b.Ctx.MemInfo() }

// pool recycles device buffers by size class (powers of two from 256
// bytes), so the many short-lived activations of a forward pass do not
// each cost a cuMemAlloc.
type pool struct {
	c    *cuda.Context
	free map[uint64][]cuda.Buffer
}

func newPool(c *cuda.Context) *pool { return &pool{c: c, free: map[uint64][]cuda.Buffer{}} }

func sizeClass(n uint64) uint64 {
	c := uint64(256)
	for c < n {
		c <<= 1
	}
	return c
}

func (p *pool) get(n uint64) (cuda.Buffer, error) {
	c := sizeClass(n)
	if l := p.free[c]; len(l) > 0 {
		buf := l[len(l)-1]
		p.free[c] = l[:len(l)-1]
		return buf, nil
	}
	buf, err := p.c.Alloc(c)
	if err != nil {
		// Give the cached buffers back to the driver and try once more.
		p.drain()
		if buf, err = p.c.Alloc(c); err != nil {
			return cuda.Buffer{}, err
		}
	}
	return buf, nil
}

func (p *pool) put(buf cuda.Buffer) {
	c := sizeClass(buf.Size)
	p.free[c] = append(p.free[c], buf)
}

func (p *pool) drain() {
	for c, l := range p.free {
		for _, buf := range l {
			p.c.Free(buf)
		}
		delete(p.free, c)
	}
}
