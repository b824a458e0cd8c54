package ops

import (
	"testing"

	"blipflow/model/nn"
)

// TestPackCacheAddressesEveryStep checks the layout CachedAttention uploads
// against the cache it packs: rows of different lengths, a step widened by
// joining rows, rows reordered. Step t of row r must sit at
// (t·slots + table[r][t])·Dim, where the kernel reads it.
func TestPackCacheAddressesEveryStep(t *testing.T) {
	const layers, dim = 2, 3
	c := nn.NewKVCache(layers, 2, 2, dim, 6)
	write := func(c *nn.KVCache, tag float32) {
		pos, err := c.Reserve(1)
		if err != nil {
			t.Fatal(err)
		}
		for r, p := range pos {
			for l := 0; l < layers; l++ {
				for i := range dim {
					c.Key(l, r, p)[i] = tag + float32(1000*l+100*r+10*p+i)
					c.Value(l, r, p)[i] = -c.Key(l, r, p)[i]
				}
			}
		}
	}
	write(c, 1)
	write(c, 1)
	joining := nn.NewKVCache(layers, 3, 3, dim, 6)
	write(joining, 5000)
	if err := c.AdoptRows(joining, 0); err != nil {
		t.Fatal(err)
	}
	write(c, 9000)
	if err := c.Select([]int{4, 0, 2}); err != nil {
		t.Fatal(err)
	}
	for layer := 0; layer < layers; layer++ {
		keys, vals, table, lens, slots := packCache(c, layer)
		n := c.MaxLen()
		if slots != 5 || n != 3 || len(keys) != n*slots*dim || len(table) != c.Rows()*n {
			t.Fatalf("layer %d: %d slots, %d steps, %d keys, table %d", layer, slots, n, len(keys), len(table))
		}
		for r := 0; r < c.Rows(); r++ {
			if lens[r] != c.Len(r) {
				t.Errorf("row %d: length %d, want %d", r, lens[r], c.Len(r))
			}
			for step := 0; step < c.Len(r); step++ {
				at := (step*slots + table[r*n+step]) * dim
				for i := range dim {
					if keys[at+i] != c.Key(layer, r, step)[i] || vals[at+i] != c.Value(layer, r, step)[i] {
						t.Fatalf("layer %d row %d step %d: packed %v/%v, cache %v/%v", layer, r, step,
							keys[at:at+dim], vals[at:at+dim], c.Key(layer, r, step), c.Value(layer, r, step))
					}
				}
			}
		}
	}
}
