package nn

import (
	"blipflow/model/blas"
	"fmt"
	"testing"
)

// put writes value v for every layer's keys at step t of row r.
func put(c *KVCache, r, t int, v float32) {
	for l := range c.K {
		c.Key(l, r, t)[0] = v
	}
}

func get(c *KVCache, r, t int) float32 { return c.Key(0, r, t)[0] }

func TestKVCacheSelectSharesSteps(t *testing.T) {
	c := NewKVCache(2, 2, 6, 1, 8)
	at, err := c.Reserve(2) // a 2-step prompt per row
	if err != nil || fmt.Sprint(at) != "[0 0]" {
		t.Fatalf("Reserve = %v, %v", at, err)
	}
	for r := 0; r < 2; r++ {
		for s := 0; s < 2; s++ {
			put(c, r, s, float32(10*r+s))
		}
	}
	storage := &c.K[0][0][0]
	// Three beams per row: rows repeat, sharing the prompt's slots.
	if err := c.Select([]int{0, 0, 0, 1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	if &c.K[0][0][0] != storage {
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

func TestKVCacheGrowsSlots(t *testing.T) {
	c := NewKVCache(1, 1, 1, 2, 4)
	if _, err := c.Reserve(1); err != nil {
		t.Fatal(err)
	}
	c.Key(0, 0, 0)[0] = 7
	c.AddRows(2)
	if _, err := c.Reserve(1); err != nil {
		t.Fatal(err)
	}
	if c.Width[0] < 3 || c.Key(0, 0, 0)[0] != 7 {
		t.Fatalf("step 0 has %d slots, kept value %v", c.Width[0], c.Key(0, 0, 0)[0])
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
