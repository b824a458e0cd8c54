package nn

import (
	"fmt"
	"testing"

	"blipflow/model/blas"
)

// storages are the two host storages; the cache's bookkeeping tests run
// on both (with values bf16 holds exactly: integers up to 256).
var storages = []struct {
	name string
	new  func(layers, rows, slots, dim, capacity int) *KVCache
}{
	{"fp32", NewKVCache},
	{"bf16", NewKVCacheBF16},
}

// eachStorage runs test as a subtest for each host storage.
func eachStorage(t *testing.T, test func(t *testing.T, newCache func(layers, rows, slots, dim, capacity int) *KVCache)) {
	for _, st := range storages {
		t.Run(st.name, func(t *testing.T) { test(t, st.new) })
	}
}

// rowOf returns Dim copies of v.
func rowOf(c *KVCache, v float32) []float32 {
	row := make([]float32, c.Dim)
	for i := range row {
		row[i] = v
	}
	return row
}

// put writes value v for every layer's keys at step t of row r.
func put(c *KVCache, r, t int, v float32) {
	for l := 0; l < c.Layers; l++ {
		c.WriteKey(l, r, t, rowOf(c, v))
	}
}

// get returns the first key of step t of row r in layer 0.
func get(c *KVCache, r, t int) float32 { return key(c, 0, r, t) }

// key and value return the first key (value) of step t of row r in a layer.
func key(c *KVCache, l, r, t int) float32 {
	row := make([]float32, c.Dim)
	c.ReadKey(row, l, r, t)
	return row[0]
}

func value(c *KVCache, l, r, t int) float32 {
	row := make([]float32, c.Dim)
	c.ReadValue(row, l, r, t)
	return row[0]
}

// storageAt returns the address of the first stored key, whichever the
// storage.
func storageAt(c *KVCache) any {
	if c.K16 != nil {
		return &c.K16[0][0][0]
	}
	return &c.K[0][0][0]
}

func TestKVCacheSelectSharesSteps(t *testing.T) { eachStorage(t, testKVCacheSelectSharesSteps) }

func testKVCacheSelectSharesSteps(t *testing.T, newCache func(layers, rows, slots, dim, capacity int) *KVCache) {
	c := newCache(2, 2, 6, 1, 8)
	at, err := c.Reserve(2) // a 2-step prompt per row
	if err != nil || fmt.Sprint(at) != "[0 0]" {
		t.Fatalf("Reserve = %v, %v", at, err)
	}
	for r := 0; r < 2; r++ {
		for s := 0; s < 2; s++ {
			put(c, r, s, float32(10*r+s))
		}
	}
	storage := storageAt(c)
	// Three beams per row: rows repeat, sharing the prompt's slots.
	if err := c.Select([]int{0, 0, 0, 1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	if storageAt(c) != storage {
		t.Fatal("Select moved the storage")
	}
	if c.Slot(1, 0) != c.Slot(0, 0) || get(c, 4, 1) != 11 {
		t.Fatalf("beams do not share their row's prompt: slots %d %d, value %v", c.Slot(1, 0), c.Slot(0, 0), get(c, 4, 1))
	}
	at, err = c.Reserve(1)
	if err != nil || fmt.Sprint(at) != "[2 2 2 2 2 2]" {
		t.Fatalf("Reserve = %v, %v", at, err)
	}
	if c.Width[0] != 2 || c.Width[2] != 6 {
		t.Errorf("steps hold %d (prompt) and %d (beams) slots, want 2 and 6: as many as the rows using them", c.Width[0], c.Width[2])
	}
	seen := map[int]bool{}
	for r := 0; r < 6; r++ {
		put(c, r, 2, float32(100+r))
		if seen[c.Slot(r, 2)] {
			t.Fatalf("two rows write step 2 into slot %d", c.Slot(r, 2))
		}
		seen[c.Slot(r, 2)] = true
	}
	// Reorder: the new row 0 continues old row 5, row 1 old row 2; the
	// others finish and leave.
	if err := c.Select([]int{5, 2}); err != nil {
		t.Fatal(err)
	}
	if c.Rows() != 2 || get(c, 0, 2) != 105 || get(c, 0, 0) != 10 || get(c, 1, 2) != 102 || get(c, 1, 1) != 1 {
		t.Fatalf("after select: rows %d, values %v %v %v %v", c.Rows(), get(c, 0, 2), get(c, 0, 0), get(c, 1, 2), get(c, 1, 1))
	}
	// A new row joins with its own (shorter) history: its steps go to
	// slots no other row uses at those steps.
	c.AddRows(1)
	at, err = c.Reserve(1)
	if err != nil || fmt.Sprint(at) != "[3 3 0]" {
		t.Fatalf("Reserve after join = %v, %v", at, err)
	}
	if c.Slot(2, 0) == c.Slot(0, 0) && c.Slot(0, 0) == c.Slot(1, 0) {
		t.Fatal("joining row took a slot its neighbours use")
	}
	for _, r := range []int{0, 1} {
		if c.Slot(2, 0) == c.Slot(r, 0) {
			t.Fatalf("joining row shares step 0 slot %d with row %d", c.Slot(2, 0), r)
		}
	}
	c.Truncate(1)
	if c.Len(0) != 3 || c.Len(2) != 0 {
		t.Fatalf("after truncate: lens %d %d", c.Len(0), c.Len(2))
	}
	if _, err := c.Reserve(9); err == nil {
		t.Fatal("reserving past the capacity succeeded")
	}
	if err := c.Select([]int{7}); err == nil {
		t.Fatal("selecting a missing row succeeded")
	}
}

func TestKVCacheGrowsSlots(t *testing.T) { eachStorage(t, testKVCacheGrowsSlots) }

func testKVCacheGrowsSlots(t *testing.T, newCache func(layers, rows, slots, dim, capacity int) *KVCache) {
	c := newCache(1, 1, 1, 2, 4)
	if _, err := c.Reserve(1); err != nil {
		t.Fatal(err)
	}
	put(c, 0, 0, 7)
	c.AddRows(2)
	if _, err := c.Reserve(1); err != nil {
		t.Fatal(err)
	}
	if c.Width[0] < 3 || get(c, 0, 0) != 7 {
		t.Fatalf("step 0 has %d slots, kept value %v", c.Width[0], get(c, 0, 0))
	}
}

func TestCachedAttentionMatchesAttention(t *testing.T) {
	const rows, heads, hd, steps = 2, 2, 4, 5
	d := heads * hd
	rng := NewRandomSource(3, 1)
	c := NewKVCache(1, rows, rows, d, steps)
	if _, err := c.Reserve(steps); err != nil {
		t.Fatal(err)
	}
	rng.Shaped([]int{1}) // advance
	for s := 0; s < steps; s++ {
		copy(c.K[0][s], rng.Shaped([]int{len(c.K[0][s])}))
		copy(c.V[0][s], rng.Shaped([]int{len(c.V[0][s])}))
	}
	if err := c.Select([]int{1, 0}); err != nil { // rows swapped: reads go through the tables
		t.Fatal(err)
	}
	q := rng.Shaped([]int{rows * d})
	mask := make([]float32, rows*steps)
	mask[1] = -1e30 // row 0 does not see step 1
	spec := AttentionSpec{Heads: heads, HeadDim: hd, Scale: 0.5}
	got := make([]float32, rows*d)
	(&cachedAttn{cache: c, spec: spec, b: rows, tq: 1, q: q, mask: mask, tm: steps}).step(got)
	// Reference: each row's keys and values gathered batch-major.
	k, v := make([]float32, rows*steps*d), make([]float32, rows*steps*d)
	for r := 0; r < rows; r++ {
		for s := 0; s < steps; s++ {
			copy(k[(r*steps+s)*d:], c.Key(0, r, s))
			copy(v[(r*steps+s)*d:], c.Value(0, r, s))
		}
	}
	want := make([]float32, rows*d)
	attention(blas.Gonum{}, AttentionShape{Batch: rows, Heads: heads, HeadDim: hd, Tq: 1, Tk: steps, Scale: 0.5}, q, k, v, mask, nil, want)
	for i := range want {
		if diff := got[i] - want[i]; diff > 1e-5 || diff < -1e-5 {
			t.Fatalf("value %d: cached %v, reference %v", i, got[i], want[i])
		}
	}
}

func TestAdoptRowsKeepsEveryRowsValues(t *testing.T) {
	for _, into := range storages {
		for _, from := range storages {
			t.Run(from.name+" into "+into.name, func(t *testing.T) { testAdoptRowsKeepsEveryRowsValues(t, into.new, from.new) })
		}
	}
}

// testAdoptRowsKeepsEveryRowsValues adopts rows of a cache made by
// newJoining into one made by newRunning (values: tag 64, 128 or 192 plus
// 16·row + 4·layer + step, integers bf16 holds exactly).
func testAdoptRowsKeepsEveryRowsValues(t *testing.T, newRunning, newJoining func(layers, rows, slots, dim, capacity int) *KVCache) {
	const layers, dim = 2, 3
	fill := func(c *KVCache, tag float32) {
		pos, err := c.Reserve(1)
		if err != nil {
			t.Fatal(err)
		}
		for r := range pos {
			for l := 0; l < layers; l++ {
				v := tag + float32(16*r+4*l+pos[r])
				c.WriteKey(l, r, pos[r], rowOf(c, v))
				c.WriteValue(l, r, pos[r], rowOf(c, -v))
			}
		}
	}
	running := newRunning(layers, 2, 2, dim, 4)
	for i := 0; i < 3; i++ {
		fill(running, 64)
	}
	if err := running.Select([]int{1}); err != nil { // row 0 left
		t.Fatal(err)
	}
	joining := newJoining(layers, 2, 2, dim, 6)
	for i := 0; i < 2; i++ {
		fill(joining, 128)
	}
	if err := running.AdoptRows(joining, 0); err != nil {
		t.Fatal(err)
	}
	if running.Rows() != 3 || running.Len(0) != 3 || running.Len(1) != 2 || running.Len(2) != 2 || running.Capacity != 6 {
		t.Fatalf("rows %d lens %d %d %d capacity %d", running.Rows(), running.Len(0), running.Len(1), running.Len(2), running.Capacity)
	}
	check := func(r, src, steps int, tag float32) {
		for s := 0; s < steps; s++ {
			for l := 0; l < layers; l++ {
				want := tag + float32(16*src+4*l+s)
				if k, v := key(running, l, r, s), value(running, l, r, s); k != want || v != -want {
					t.Errorf("row %d step %d layer %d: k %v v %v, want %v", r, s, l, k, v, want)
				}
			}
		}
	}
	check(0, 1, 3, 64)
	check(1, 0, 2, 128)
	check(2, 1, 2, 128)
	// The rows grow on together after joining.
	fill(running, 192)
	check(0, 1, 3, 64)
	check(1, 0, 2, 128)
	if err := running.AdoptRows(newJoining(layers+1, 1, 1, dim, 4), 0); err == nil {
		t.Error("adopting rows of another shape succeeded")
	}
	if err := running.AdoptRows(NewKVTables(layers, 1, 1, dim, 4), 0); err == nil {
		t.Error("adopting rows of a cache without host storage succeeded")
	}
}

func TestAdoptRowsShiftedAndDropLeading(t *testing.T) {
	eachStorage(t, testAdoptRowsShiftedAndDropLeading)
}

func testAdoptRowsShiftedAndDropLeading(t *testing.T, newCache func(layers, rows, slots, dim, capacity int) *KVCache) {
	const layers, dim = 1, 2
	running := newCache(layers, 1, 1, dim, 5)
	joining := newCache(layers, 1, 1, dim, 3)
	for i, c := range []*KVCache{running, running, running, joining} {
		pos, err := c.Reserve(1)
		if err != nil {
			t.Fatal(err)
		}
		put(c, 0, pos[0], float32(10*i+1))
	}
	if err := running.AdoptRows(joining, 3); err != nil {
		t.Fatal(err)
	}
	if running.Len(1) != 4 || get(running, 1, 3) != 31 || running.Capacity != 6 {
		t.Fatalf("shifted row: %d steps, step 3 key %v, capacity %d", running.Len(1), get(running, 1, 3), running.Capacity)
	}
	if err := running.Select([]int{1}); err != nil {
		t.Fatal(err)
	}
	if err := running.DropLeading(3); err != nil {
		t.Fatal(err)
	}
	if running.Len(0) != 1 || get(running, 0, 0) != 31 {
		t.Fatalf("after dropping the padding: %d steps, key %v", running.Len(0), get(running, 0, 0))
	}
	if _, err := running.Reserve(5); err != nil {
		t.Errorf("capacity not kept after dropping steps: %v", err)
	}
	if err := running.DropLeading(7); err == nil {
		t.Error("dropped more steps than a row holds")
	}
}
