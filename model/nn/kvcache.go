package nn

import "fmt"

// KVBuffer is one layer's key or value cache, stored time-major
// ([Len][Batch][Dim]) so that appending a step is a plain append and the
// whole cache is one contiguous slice.
type KVBuffer struct {
	Batch, Dim, Len int
	Data            []float32
}

// NewKVBuffer returns an empty buffer with room for capacity steps.
func NewKVBuffer(batch, dim, capacity int) *KVBuffer {
	return &KVBuffer{Batch: batch, Dim: dim, Data: make([]float32, 0, batch*dim*capacity)}
}

// Append adds x, laid out batch-major [Batch][t][Dim], as t new steps.
func (b *KVBuffer) Append(x []float32, t int) {
	for s := 0; s < t; s++ {
		for r := 0; r < b.Batch; r++ {
			off := (r*t + s) * b.Dim
			b.Data = append(b.Data, x[off:off+b.Dim]...)
		}
	}
	b.Len += t
}

// Select rearranges the batch rows: afterwards row i holds what row src[i]
// held. src may be shorter (rows dropped) or longer (rows repeated).
func (b *KVBuffer) Select(src []int) error {
	for _, s := range src {
		if s < 0 || s >= b.Batch {
			return fmt.Errorf("kv cache: row %d out of range [0,%d)", s, b.Batch)
		}
	}
	out := make([]float32, 0, len(src)*b.Dim*max(b.Len, cap(b.Data)/max(b.Batch*b.Dim, 1)))
	for t := 0; t < b.Len; t++ {
		step := b.Data[t*b.Batch*b.Dim : (t+1)*b.Batch*b.Dim]
		for _, s := range src {
			out = append(out, step[s*b.Dim:(s+1)*b.Dim]...)
		}
	}
	b.Data, b.Batch = out, len(src)
	return nil
}

// Cache is the per-layer key and value buffers of a decoder.
type Cache struct {
	K, V []*KVBuffer
}

// NewCache returns an empty cache for layers of width dim.
func NewCache(layers, batch, dim, capacity int) *Cache {
	c := &Cache{}
	for i := 0; i < layers; i++ {
		c.K = append(c.K, NewKVBuffer(batch, dim, capacity))
		c.V = append(c.V, NewKVBuffer(batch, dim, capacity))
	}
	return c
}

// Len returns the number of cached steps.
func (c *Cache) Len() int { return c.K[0].Len }

// Batch returns the number of rows.
func (c *Cache) Batch() int { return c.K[0].Batch }

// Select rearranges the rows of every buffer (see KVBuffer.Select).
func (c *Cache) Select(src []int) error {
	for i := range c.K {
		if err := c.K[i].Select(src); err != nil {
			return err
		}
		if err := c.V[i].Select(src); err != nil {
			return err
		}
	}
	return nil
}
