package ops

import (
	"fmt"
	"runtime"
	"unsafe"
	"weak"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"blipflow/model/nn"
)

// The nn.Ops adapter keeps the KV cache on the host (nn.KVBuffer, which
// the decoders reorder and merge). To avoid uploading the whole cache to
// every attention call, each buffer has a device mirror: an append uploads
// only the new steps when the host buffer is otherwise unchanged, and an
// attention call whose k or v is a mirrored buffer reads the mirror.

// mirror is the device copy of one KV buffer (time-major [Len][Batch][Dim]).
type mirror struct {
	buf   weak.Pointer[nn.KVBuffer] // the host buffer, while it lives
	t     Tensor
	steps int // steps the device copy holds
	batch int
	host  unsafe.Pointer // &Data[0] when last synced
	room  int            // steps the device buffer can hold
}

// syncPlan says what an append must upload: from step `from` to the end,
// reallocating the device buffer first when grow is set. A buffer whose
// rows or storage changed since the last sync (Select, a merge, a trim) is
// uploaded whole.
func syncPlan(m *mirror, before unsafe.Pointer, batch, oldLen, newLen int) (from int, grow bool) {
	if m == nil || m.batch != batch || m.steps != oldLen || m.host != before || before == nil {
		return 0, m == nil || m.room < newLen || m.batch != batch
	}
	if newLen > m.room {
		return 0, true
	}
	return oldLen, false
}

// kvMirrors holds the mirrors of one backend, by host buffer and by the
// address of its data.
type kvMirrors struct {
	b      *Backend
	byBuf  map[*nn.KVBuffer]*mirror
	byHost map[unsafe.Pointer]*mirror
}

func newKVMirrors(b *Backend) *kvMirrors {
	return &kvMirrors{b: b, byBuf: map[*nn.KVBuffer]*mirror{}, byHost: map[unsafe.Pointer]*mirror{}}
}

func dataPtr(d []float32) unsafe.Pointer {
	if len(d) == 0 {
		return nil
	}
	return unsafe.Pointer(&d[0])
}

// appendStep appends x (t steps) to buf on the host and brings its mirror
// up to date. Call inside Ctx.Do with b.mu held.
func (k *kvMirrors) appendStep(buf *nn.KVBuffer, x []float32, t int) error {
	before, oldLen := dataPtr(buf.Data), buf.Len
	buf.Append(x, t)
	m := k.byBuf[buf]
	from, grow := syncPlan(m, before, buf.Batch, oldLen, buf.Len)
	if m == nil {
		m = &mirror{buf: weak.Make(buf)}
		k.byBuf[buf] = m
		ctx := k.b.Ctx // a closed context refuses the work: Close freed the mirrors
		runtime.AddCleanup(buf, func(m *mirror) {
			ctx.Do(func() error {
				k.b.mu.Lock()
				defer k.b.mu.Unlock()
				k.drop(m)
				return nil
			})
		}, m)
	}
	if grow {
		if m.t.Buf.Ptr != 0 {
			k.b.Ctx.Free(m.t.Buf)
		}
		room := max(cap(buf.Data)/max(buf.Batch*buf.Dim, 1), buf.Len)
		bufDev, err := k.b.Ctx.Alloc(uint64(4 * max(room*buf.Batch*buf.Dim, 1)))
		if err != nil {
			delete(k.byBuf, buf)
			return fmt.Errorf("kv cache mirror: %w", err)
		}
		m.t, m.room, from = Tensor{Buf: bufDev}, room, 0
	}
	step := buf.Batch * buf.Dim
	if n := (buf.Len - from) * step; n > 0 {
		src := buf.Data[from*step : buf.Len*step]
		if err := k.b.upload(m.t.Buf.Ptr+uintptr(4*from*step), unsafe.Slice((*byte)(unsafe.Pointer(&src[0])), 4*len(src))); err != nil {
			return err
		}
	}
	delete(k.byHost, m.host)
	m.steps, m.batch, m.host = buf.Len, buf.Batch, dataPtr(buf.Data)
	m.t.Shape = []int{buf.Len, buf.Batch, buf.Dim}
	k.byHost[m.host] = m
	return nil
}

// lookup returns the mirror of a host tensor that is a whole mirrored
// buffer.
func (k *kvMirrors) lookup(d *tensor.Dense) (Tensor, bool) {
	data, ok := d.Data().([]float32)
	if !ok {
		return Tensor{}, false
	}
	m, ok := k.byHost[dataPtr(data)]
	if !ok {
		return Tensor{}, false
	}
	// Only while the buffer still holds exactly this data: a freed array's
	// address may come back for another tensor.
	buf := m.buf.Value()
	if buf == nil || dataPtr(buf.Data) != m.host || buf.Len != m.steps || buf.Batch != m.batch || len(data) != buf.Len*buf.Batch*buf.Dim {
		return Tensor{}, false
	}
	return m.t, true
}

func (k *kvMirrors) drop(m *mirror) {
	delete(k.byHost, m.host)
	for buf, mm := range k.byBuf {
		if mm == m {
			delete(k.byBuf, buf)
		}
	}
	if m.t.Buf.Ptr != 0 {
		k.b.Ctx.Free(m.t.Buf)
	}
}

// kvAppendOp is KVAppend on the adapter: the host append of nn's CPU op,
// plus the mirror update, returning a view of the host cache.
type kvAppendOp struct {
	gop
	buf *nn.KVBuffer
	k   *kvMirrors
}

func (o *kvAppendOp) Do(vals ...G.Value) (G.Value, error) {
	d, ok := vals[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("kv_append: input is %T", vals[0])
	}
	s := d.Shape()
	if len(s) != 3 || s[0] != o.buf.Batch || s[2] != o.buf.Dim {
		return nil, fmt.Errorf("kv_append: input %v, cache holds [*,%d,%d]", s, o.buf.Batch, o.buf.Dim)
	}
	err := o.k.b.Ctx.Do(func() error {
		o.k.b.mu.Lock()
		defer o.k.b.mu.Unlock()
		return o.k.appendStep(o.buf, d.Data().([]float32), s[1])
	})
	if err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(o.buf.Len, o.buf.Batch, o.buf.Dim), tensor.WithBacking(o.buf.Data)), nil
}
