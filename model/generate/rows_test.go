package generate

import (
	"context"
	"slices"
	"testing"
)

// TestChooserMatchesGenerate drives the fake decoder one row at a time with a
// Chooser and checks every row gets what Generate gives the whole batch.
func TestChooserMatchesGenerate(t *testing.T) {
	for _, cfg := range []Config{
		{MaxNewTokens: Int(6), EOSTokenID: TokenIDs{3}},
		{MaxNewTokens: Int(7), EOSTokenID: TokenIDs{3}, RepetitionPenalty: Float(1.5), MinNewTokens: Int(2)},
	} {
		prompts := [][]int{{1, 2}, {4, 4}, {0, 5}, {7}}
		logitsOf := hashLogits(8, 5)
		dec, first := newFake(logitsOf, prompts)
		want, err := Generate(context.Background(), dec, first, prompts, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewChooser(cfg, 8)
		if err != nil {
			t.Fatal(err)
		}
		for r, p := range prompts {
			one, first := newFake(logitsOf, [][]int{p})
			s, err := c.Start(p)
			if err != nil {
				t.Fatal(err)
			}
			logits := first[0]
			for !s.Done() {
				tok, err := c.Next(s, logits)
				if err != nil {
					t.Fatal(err)
				}
				if s.Done() {
					break
				}
				out, err := one.Step(context.Background(), []int{tok})
				if err != nil {
					t.Fatal(err)
				}
				logits = out[0]
			}
			if !slices.Equal(s.New(), want[r][0]) {
				t.Fatalf("row %d: chooser gave %v, Generate %v", r, s.New(), want[r][0])
			}
		}
	}
}

func TestChooserRefusesBeamsAndBadInput(t *testing.T) {
	if _, err := NewChooser(Config{NumBeams: Int(3)}, 8); err == nil {
		t.Fatal("beam search accepted")
	}
	c, err := NewChooser(Config{MaxNewTokens: Int(1)}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start([]int{9}); err == nil {
		t.Fatal("out-of-vocabulary prompt accepted")
	}
	s, _ := c.Start([]int{1})
	if _, err := c.Next(s, make([]float32, 7)); err == nil {
		t.Fatal("short logits accepted")
	}
	if _, err := c.Next(s, make([]float32, 8)); err != nil || !s.Done() {
		t.Fatalf("max_new_tokens=1 did not end the sequence: %v", err)
	}
	if _, err := c.Next(s, make([]float32, 8)); err == nil {
		t.Fatal("Next after the end accepted")
	}
}
