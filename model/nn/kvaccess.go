package nn

import (
	"fmt"

	"blipflow/model/bf16"
)

// Reading and writing a step of a row in either host storage (fp32 or
// bf16): what the CPU ops and AdoptRows use so that they need not know
// which storage a cache has.

// KeyBF16 returns the keys of step t of row r in a layer, in place (bf16
// host storage).
func (c *KVCache) KeyBF16(layer, r, t int) []uint16 {
	if c.K16 == nil {
		panic("nn: KVCache.KeyBF16 on a cache without bf16 host storage")
	}
	s := int(c.table[r][t]) * c.Dim
	return c.K16[layer][t][s : s+c.Dim]
}

// ValueBF16 returns the values of step t of row r in a layer, in place
// (bf16 host storage).
func (c *KVCache) ValueBF16(layer, r, t int) []uint16 {
	if c.V16 == nil {
		panic("nn: KVCache.ValueBF16 on a cache without bf16 host storage")
	}
	s := int(c.table[r][t]) * c.Dim
	return c.V16[layer][t][s : s+c.Dim]
}

// ReadKey copies the keys of step t of row r in a layer into dst (Dim
// values), widening bf16 storage.
func (c *KVCache) ReadKey(dst []float32, layer, r, t int) { c.read(dst, layer, r, t, false) }

// ReadValue copies the values of step t of row r in a layer into dst (Dim
// values), widening bf16 storage.
func (c *KVCache) ReadValue(dst []float32, layer, r, t int) { c.read(dst, layer, r, t, true) }

// WriteKey stores src (Dim values) as the keys of step t of row r in a
// layer, rounding to nearest even for bf16 storage.
func (c *KVCache) WriteKey(layer, r, t int, src []float32) { c.write(layer, r, t, false, src) }

// WriteValue stores src (Dim values) as the values of step t of row r in a
// layer, rounding to nearest even for bf16 storage.
func (c *KVCache) WriteValue(layer, r, t int, src []float32) { c.write(layer, r, t, true, src) }

func (c *KVCache) read(dst []float32, layer, r, t int, values bool) {
	s := int(c.table[r][t]) * c.Dim
	switch f32, b16 := c.store(values); {
	case f32 != nil:
		copy(dst[:c.Dim], f32[layer][t][s:s+c.Dim])
	case b16 != nil:
		bf16.ToFloat32(dst[:c.Dim], b16[layer][t][s:s+c.Dim])
	default:
		panic(fmt.Sprintf("nn: reading kv cache layer %d row %d step %d: no host storage", layer, r, t))
	}
}

func (c *KVCache) write(layer, r, t int, values bool, src []float32) {
	s := int(c.table[r][t]) * c.Dim
	switch f32, b16 := c.store(values); {
	case f32 != nil:
		copy(f32[layer][t][s:s+c.Dim], src[:c.Dim])
	case b16 != nil:
		bf16.FromFloat32(b16[layer][t][s:s+c.Dim], src[:c.Dim])
	default:
		panic(fmt.Sprintf("nn: writing kv cache layer %d row %d step %d: no host storage", layer, r, t))
	}
}

// store returns the storage of the keys (or values): one of the two is
// non-nil for a host cache.
func (c *KVCache) store(values bool) ([][][]float32, [][][]uint16) {
	if values {
		return c.V, c.V16
	}
	return c.K, c.K16
}

// copySlot copies step ot of row r of o into slot s of step t of c, in
// every layer, keys and values: exactly when both storages are alike,
// rounding or widening when they differ.
func (c *KVCache) copySlot(t, s int, o *KVCache, r, ot int) {
	for _, values := range []bool{false, true} {
		cf, cb := c.store(values)
		of, ob := o.store(values)
		os := int(o.table[r][ot]) * o.Dim
		for l := 0; l < c.Layers; l++ {
			switch {
			case cf != nil && of != nil:
				copy(cf[l][t][s*c.Dim:(s+1)*c.Dim], of[l][ot][os:os+o.Dim])
			case cb != nil && ob != nil:
				copy(cb[l][t][s*c.Dim:(s+1)*c.Dim], ob[l][ot][os:os+o.Dim])
			case cb != nil: // fp32 into bf16
				bf16.FromFloat32(cb[l][t][s*c.Dim:(s+1)*c.Dim], of[l][ot][os:os+o.Dim])
			default: // bf16 into fp32
				bf16.ToFloat32(cf[l][t][s*c.Dim:(s+1)*c.Dim], ob[l][ot][os:os+o.Dim])
			}
		}
	}
}
