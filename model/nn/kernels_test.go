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
