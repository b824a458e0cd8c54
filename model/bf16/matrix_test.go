package bf16

import (
	"math/rand/v2"
	"sync"
	"testing"
)

func TestPackRowAndRelease(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, s := range [][2]int{{1, 1}, {3, 5}, {64, 32}, {65, 33}, {130, 70}} {
		n, k := s[0], s[1]
		data := make([]uint16, n*k)
		for i := range data {
			data[i] = Round(float32(r.NormFloat64()))
		}
		orig := append([]uint16(nil), data...)
		w := NewMatrix(n, k, data)
		before := make([]float32, k)
		w.Row(before, n-1)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); w.Pack() }()
		}
		wg.Wait()
		if !w.Packed() || w.Data != nil {
			t.Fatalf("%dx%d: after Pack, Packed() = %v and Data has %d values; want packed and Data released", n, k, w.Packed(), len(w.Data))
		}
		pk := w.pk.Load()
		if pk.kp%blockK != 0 || pk.np%blockN != 0 || len(pk.data) != pk.kp*pk.np {
			t.Fatalf("%dx%d: packed geometry kp=%d np=%d len=%d", n, k, pk.kp, pk.np, len(pk.data))
		}
		nonzero := 0
		for _, v := range pk.data {
			if v != 0 {
				nonzero++
			}
		}
		row := make([]float32, k)
		for j := range n {
			w.Row(row, j)
			for l := range k {
				if want := Widen(orig[j*k+l]); row[l] != want {
					t.Fatalf("%dx%d: Row(%d)[%d] = %g, want %g", n, k, j, l, row[l], want)
				}
				if orig[j*k+l] != 0 {
					nonzero--
				}
			}
		}
		if nonzero != 0 {
			t.Fatalf("%dx%d: the padding of the packed copy holds %d nonzero values", n, k, nonzero)
		}
		for l := range k {
			if before[l] != row[l] {
				t.Fatalf("%dx%d: Row before and after packing differ at %d", n, k, l)
			}
		}
	}
}
