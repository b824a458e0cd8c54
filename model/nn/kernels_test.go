package nn

import (
	"math"
	"testing"
)

func TestErf32(t *testing.T) {
	var worst float64
	for x := -6.0; x <= 6; x += 0.001 {
		got := float64(erf32(float32(x)))
		worst = math.Max(worst, math.Abs(got-math.Erf(x)))
	}
	if worst > 5e-7 {
		t.Fatalf("erf32 max error %g", worst)
	}
}

func TestExp32(t *testing.T) {
	var worst float64
	for x := -87.0; x <= 0; x += 0.0007 {
		got, want := float64(exp32(float32(x))), math.Exp(float64(float32(x)))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 5e-7 {
		t.Fatalf("exp32 max relative error %g", worst)
	}
	if exp32(-100) != 0 || exp32(0) != 1 {
		t.Fatalf("exp32 edge values %g %g", exp32(-100), exp32(0))
	}
}
