package blip2

import (
	"context"
	"math"
	"testing"

	"blipflow/model/blas"
)

// TestRowsAdmitAndLeave drives Rows by hand: two images decode three
// steps, a third joins (its cache copied into free slots of the running
// cache, its length its own), the first two leave, another joins the one
// left, and every row's logits equal those it gets decoding alone.
func TestRowsAdmitAndLeave(t *testing.T) {
	g := loadGolden(t, "opt-tiny")
	m := loadModel(t, "opt-tiny", blas.Gonum{})
	px := [][]float32{g.tensor(t, "c1.pixel_values"), g.tensor(t, "c2.pixel_values")}
	encode := func(imgs ...int) *ImageOutputs {
		var all []float32
		for _, i := range imgs {
			all = append(all, px[i%2]...)
		}
		out, err := m.EncodeImages(context.Background(), all, len(imgs))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	prompt := func(n int) ([][]int, [][]int) {
		row := append(repeat(*m.Config.ImageTokenIndex, m.Config.NumQueryTokens), *m.Config.Text.BOSTokenID)
		ids, mask := make([][]int, n), make([][]int, n)
		for i := range ids {
			ids[i], mask[i] = row, onesInt(len(row))
		}
		return ids, mask
	}
	tokens := []int{15, 129, 259, 30, 186, 218}
	// alone returns the logits of image i after feeding toks one by one.
	alone := func(i int, toks []int) []float32 {
		ids, mask := prompt(1)
		r, first, err := m.StartRows(context.Background(), encode(i), ids, mask, 10)
		if err != nil {
			t.Fatal(err)
		}
		last := first[0]
		for _, tok := range toks {
			out, err := r.Step(context.Background(), []int{tok})
			if err != nil {
				t.Fatal(err)
			}
			last = out[0]
		}
		return last
	}

	ids, mask := prompt(2)
	run, _, err := m.StartRows(context.Background(), encode(0, 1), ids, mask, 10)
	if err != nil {
		t.Fatal(err)
	}
	promptLen := len(ids[0])
	for s := 0; s < 3; s++ {
		if _, err := run.Step(context.Background(), []int{tokens[s], tokens[s+1]}); err != nil {
			t.Fatal(err)
		}
	}
	ids, mask = prompt(1)
	joining, _, err := m.StartRows(context.Background(), encode(2), ids, mask, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Admit(joining); err != nil {
		t.Fatal(err)
	}
	dec := run.d.(*optDecoder)
	if run.Len() != 3 || dec.cache.Len(0) != promptLen+3 || dec.cache.Len(2) != promptLen || len(dec.mask[2]) != promptLen || len(run.Prompts) != 3 {
		t.Fatalf("after admit: %d rows, cache %d and %d steps, joined row mask %v", run.Len(), dec.cache.Len(0), dec.cache.Len(2), dec.mask[2])
	}
	out, err := run.Step(context.Background(), []int{tokens[3], tokens[4], tokens[0]})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%s: logit %d is %v, alone %v", what, i, got[i], want[i])
			}
		}
	}
	check("running row 0", out[0], alone(0, []int{tokens[0], tokens[1], tokens[2], tokens[3]}))
	check("joined row", out[2], alone(2, []int{tokens[0]}))

	// The first two rows leave; a fourth image joins the one left.
	if err := run.Select([]int{2}); err != nil {
		t.Fatal(err)
	}
	if run.Len() != 1 || dec.cache.Len(0) != promptLen+1 || len(dec.mask[0]) != promptLen+1 || len(run.Prompts) != 1 {
		t.Fatalf("after the others left: %d rows, cache %d steps, mask %d, want %d", run.Len(), dec.cache.Len(0), len(dec.mask[0]), promptLen+1)
	}
	joining, _, err = m.StartRows(context.Background(), encode(1), ids, mask, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Admit(joining); err != nil {
		t.Fatal(err)
	}
	out, err = run.Step(context.Background(), []int{tokens[5], tokens[2]})
	if err != nil {
		t.Fatal(err)
	}
	check("joined row after the others left", out[0], alone(2, []int{tokens[0], tokens[5]}))
	check("second joined row", out[1], alone(1, []int{tokens[2]}))
}
