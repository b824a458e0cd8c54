package generate

import (
	"math"
	"slices"
	"testing"
)

var minusInf = float32(math.Inf(-1))

func TestRepetitionPenalty(t *testing.T) {
	scores := []float32{2, -1, 0.5, -3, 0}
	// Token 1 appears twice but is penalised once; token 4 (score 0) is divided.
	repetitionPenalty(scores, []int{0, 1, 1, 4}, 2, make([]bool, len(scores)))
	if want := []float32{1, -2, 0.5, -3, 0}; !slices.Equal(scores, want) {
		t.Errorf("got %v, want %v", scores, want)
	}
}

func TestNoRepeatNGram(t *testing.T) {
	tests := []struct {
		name string
		ids  []int
		n    int
		want []float32
	}{
		{"bigram bans the follower of the last token", []int{1, 2, 3, 1}, 2, []float32{0, 0, minusInf, 0}},
		{"trigram", []int{0, 1, 2, 0, 1}, 3, []float32{0, 0, minusInf, 0}},
		{"too short to ban", []int{1, 2}, 3, []float32{0, 0, 0, 0}},
		{"unigram bans every seen token", []int{3, 0}, 1, []float32{minusInf, 0, 0, minusInf}},
		{"several windows", []int{1, 2, 1, 3, 1}, 2, []float32{0, 0, minusInf, minusInf}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scores := make([]float32, 4)
			noRepeatNGram(scores, tt.ids, tt.n)
			if !slices.Equal(scores, tt.want) {
				t.Errorf("got %v, want %v", scores, tt.want)
			}
		})
	}
}

func TestMaskEOS(t *testing.T) {
	scores := []float32{1, 2, 3}
	maskEOS(scores, []int{0, 2, 7})
	if want := []float32{minusInf, 2, minusInf}; !slices.Equal(scores, want) {
		t.Errorf("got %v, want %v", scores, want)
	}
}

func TestProcessAppliesMinLengthOnlyWhileShort(t *testing.T) {
	r := &runner{s: settings{eos: []int{0}, repetition: 1}, vocab: 2, seen: make([]bool, 2)}
	lim := limits{promptLen: 2, maxTotal: 10, minTotal: 4}
	short := []float32{1, 1}
	r.process(short, []int{1, 1, 1}, lim, 1)
	long := []float32{1, 1}
	r.process(long, []int{1, 1, 1, 1}, lim, 1)
	if short[0] != minusInf || long[0] != 1 {
		t.Errorf("EOS after 3 ids %v, after 4 ids %v: want masked then kept", short[0], long[0])
	}
}

func TestTemperature(t *testing.T) {
	scores := []float32{2, -4, 0}
	temperature(scores, 0.5)
	if want := []float32{4, -8, 0}; !slices.Equal(scores, want) {
		t.Errorf("got %v, want %v", scores, want)
	}
}

func TestTopK(t *testing.T) {
	tests := []struct {
		name    string
		scores  []float32
		k, keep int
		want    []float32
	}{
		{"keeps the k best", []float32{1, 3, 2, 0}, 2, 1, []float32{minusInf, 3, 2, minusInf}},
		{"keeps ties with the k-th", []float32{1, 3, 3, 3}, 2, 1, []float32{minusInf, 3, 3, 3}},
		{"min tokens to keep wins", []float32{1, 3, 2, 0}, 1, 3, []float32{1, 3, 2, minusInf}},
		{"k beyond vocab keeps all", []float32{1, 3}, 5, 1, []float32{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scores := slices.Clone(tt.scores)
			topK(scores, tt.k, tt.keep)
			if !slices.Equal(scores, tt.want) {
				t.Errorf("got %v, want %v", scores, tt.want)
			}
		})
	}
}

func TestTopP(t *testing.T) {
	logProbs := func(p ...float64) []float32 {
		out := make([]float32, len(p))
		for i, v := range p {
			out[i] = float32(math.Log(v))
		}
		return out
	}
	tests := []struct {
		name string
		p    float64
		keep int
		want []bool // kept
	}{
		// ascending 0.05, 0.15, 0.3, 0.5: cumulative 0.05 and 0.2 are <= 0.3 (removed), 0.5 is not
		{"p=0.7", 0.7, 1, []bool{true, true, false, false}},
		{"p=0.4 keeps the best only", 0.4, 1, []bool{true, false, false, false}},
		{"min tokens to keep", 0.4, 3, []bool{true, true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scores := logProbs(0.5, 0.3, 0.15, 0.05)
			topP(scores, tt.p, tt.keep)
			for i, kept := range tt.want {
				if (scores[i] != minusInf) != kept {
					t.Errorf("token %d kept=%v, want %v (scores %v)", i, scores[i] != minusInf, kept, scores)
				}
			}
		})
	}
}

func TestLogSoftmax(t *testing.T) {
	got := make([]float32, 3)
	logSoftmax(got, []float32{1, 2, 3})
	want := []float64{-2.4076059644, -1.4076059644, -0.4076059644}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-6 {
			t.Errorf("log_softmax[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	// Large logits must not overflow.
	logSoftmax(got, []float32{1000, 1000, minusInf})
	if math.Abs(float64(got[0])+math.Ln2) > 1e-6 || got[2] != minusInf {
		t.Errorf("log_softmax of large logits = %v", got)
	}
}

func TestArgmaxTakesLowestIndexAmongEquals(t *testing.T) {
	if got := argmax([]float32{1, 3, 3, 2}); got != 1 {
		t.Errorf("argmax = %d, want 1", got)
	}
}

func TestTopIndices(t *testing.T) {
	got := topIndices([]float32{1, 5, 3, 5, 3, 0}, 4)
	if want := []int{1, 3, 2, 4}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
