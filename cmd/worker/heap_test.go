package main

import "testing"

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{0, 128 << 20, 25},         // nothing live: the default pacing
		{7700 << 20, 128 << 20, 2}, // a 2.7B model's weights: the floor
		{1 << 30, 128 << 20, 12},   // 1 GiB: 128 MiB is 12.5%
		{100 << 20, 128 << 20, 25}, // a tiny model: at most 25
		{64 << 30, 128 << 20, 2},   // never below 2
		{3 << 30, 256 << 20, 8},    // 256 MiB over 3 GiB
	} {
		if got := gcPercentFor(c.live, c.headroom); got != c.want {
			t.Errorf("gcPercentFor(%d MiB, %d MiB) = %d, want %d", c.live>>20, c.headroom>>20, got, c.want)
		}
	}
}
