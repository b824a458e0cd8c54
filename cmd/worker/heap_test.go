package main

import "testing"

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{0, 64 << 20, 25},         // nothing live: the default pacing
		{7700 << 20, 64 << 20, 1}, // a 2.7B model's weights: 0.8%, the floor
		{1 << 30, 128 << 20, 12},  // 1 GiB: 128 MiB is 12.5%
		{100 << 20, 64 << 20, 25}, // a tiny model: at most 25
		{3 << 30, 256 << 20, 8},   // 256 MiB over 3 GiB
	} {
		if got := gcPercentFor(c.live, c.headroom); got != c.want {
			t.Errorf("gcPercentFor(%d MiB, %d MiB) = %d, want %d", c.live>>20, c.headroom>>20, got, c.want)
		}
	}
}
