package bf16

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestRound(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{0, 0},
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even below
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd below: up
		{math.Float32frombits(0x3f808001), 0x3f81}, // above the tie
		{math.Float32frombits(0x3f807fff), 0x3f80}, // below the tie
		{math.MaxFloat32, 0x7f80},                  // rounds past the largest bf16
		{float32(math.Inf(-1)), 0xff80},
		{math.Float32frombits(0x00000001), 0x0000}, // smallest denormal rounds to zero
	}
	for _, c := range cases {
		if got := Round(c.in); got != c.want {
			t.Errorf("Round(%g = %#08x) = %#04x, want %#04x", c.in, math.Float32bits(c.in), got, c.want)
		}
	}
	// NaNs stay NaN, including those whose payload is only in the low bits.
	for _, bits := range []uint32{0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff} {
		if got := Widen(Round(math.Float32frombits(bits))); !math.IsNaN(float64(got)) {
			t.Errorf("Round(NaN %#08x) widens to %g, want NaN", bits, got)
		}
	}
}

// TestRoundTrip checks that every bf16 value survives widening and
// rounding, and that FromFloat32/ToFloat32 agree with Round/Widen.
func TestRoundTrip(t *testing.T) {
	all := make([]uint16, 1<<16)
	for i := range all {
		all[i] = uint16(i)
	}
	f := make([]float32, len(all))
	ToFloat32(f, all)
	back := make([]uint16, len(all))
	FromFloat32(back, f)
	for i, h := range all {
		if math.IsNaN(float64(f[i])) {
			continue
		}
		if back[i] != h {
			t.Fatalf("bf16 %#04x -> %g -> %#04x", h, f[i], back[i])
		}
	}
}

// TestRoundError checks the rounding error bound: |Round(x)-x| <= 2^-8 |x|
// for normal x (8 significant bits, round to nearest: unit roundoff 2^-8).
func TestRoundError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		x := float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(60)-30)))
		got := Widen(Round(x))
		if d := math.Abs(float64(got - x)); d > math.Abs(float64(x))/256 {
			t.Fatalf("Round(%g) = %g, error %g > 2^-8|x|", x, got, d)
		}
	}
}

// TestFromFloat32MatchesRound checks the vector conversion against Round on
// random bit patterns (NaNs, infinities, denormals and ties included) and
// on lengths that leave a tail for the scalar loop.
func TestFromFloat32MatchesRound(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	src := make([]float32, 4099)
	for i := range src {
		bits := r.Uint32()
		switch i % 8 {
		case 1:
			bits = bits&0xffff0000 | 0x8000 // a tie
		case 2:
			bits |= 0x7f800000 // Inf or NaN
		case 3:
			bits &= 0x807fffff // zero or denormal
		case 4:
			bits = bits&0x80000000 | 0x7f7fffff // rounds past the largest bf16
		}
		src[i] = math.Float32frombits(bits)
	}
	for _, n := range []int{0, 1, 15, 16, 17, 4096, 4099} {
		dst := make([]uint16, n)
		FromFloat32(dst, src[:n])
		for i := range n {
			if want := Round(src[i]); dst[i] != want {
				t.Fatalf("n=%d: FromFloat32 of %#08x = %#04x, Round gives %#04x", n, math.Float32bits(src[i]), dst[i], want)
			}
		}
	}
}

// FuzzFromFloat32 checks the vector conversion against Round on arbitrary
// bit patterns (repeated to at least 37 values, so that both the vector
// loop and the scalar tail run).
func FuzzFromFloat32(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x3f, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		words := len(b) / 4
		if words == 0 {
			return
		}
		src := make([]float32, max(words, 37))
		for i := range src {
			w := 4 * (i % words)
			src[i] = math.Float32frombits(uint32(b[w]) | uint32(b[w+1])<<8 | uint32(b[w+2])<<16 | uint32(b[w+3])<<24)
		}
		dst := make([]uint16, len(src))
		FromFloat32(dst, src)
		for i, v := range src {
			if want := Round(v); dst[i] != want {
				t.Fatalf("FromFloat32 of %#08x = %#04x, Round gives %#04x", math.Float32bits(v), dst[i], want)
			}
		}
	})
}
