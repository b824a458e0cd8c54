package generate

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Chooser picks each sequence's next token on its own, for callers that
// manage the decode batch themselves (continuous batching: rows join and
// leave between steps, so there is no batch-wide loop). It applies the same
// logits processors and choice as Generate; only greedy search and sampling
// with one returned sequence are supported. It is not safe for concurrent
// use.
type Chooser struct {
	run *runner
}

// NewChooser resolves cfg for a vocabulary of vocab tokens.
func NewChooser(cfg Config, vocab int) (*Chooser, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if s.numBeams > 1 {
		return nil, fmt.Errorf("generate: continuous batching needs num_beams=1, got %d", s.numBeams)
	}
	if s.numReturn > 1 {
		return nil, fmt.Errorf("generate: continuous batching returns one sequence per input, got num_return_sequences=%d", s.numReturn)
	}
	if vocab <= 0 {
		return nil, fmt.Errorf("generate: vocabulary of %d tokens", vocab)
	}
	return &Chooser{run: &runner{s: s, vocab: vocab, seen: make([]bool, vocab),
		rng: rand.New(rand.NewPCG(s.seed, pcgStream))}}, nil
}

// Sequence is one row's ids so far (prompt, then generated tokens).
type Sequence struct {
	ids    []int
	lim    limits
	done   bool
	scores []float32
}

// Start begins a sequence after prompt (the ids Generate would be given for
// the row).
func (c *Chooser) Start(prompt []int) (*Sequence, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("generate: empty prompt")
	}
	for _, id := range prompt {
		if id < 0 || id >= c.run.vocab {
			return nil, fmt.Errorf("generate: prompt holds token %d outside the vocabulary of %d", id, c.run.vocab)
		}
	}
	lim, err := c.run.s.limitsFor(len(prompt))
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	return &Sequence{ids: slices.Clip(slices.Clone(prompt)), lim: lim}, nil
}

// Next applies the logits processors to a copy of logits (the model's
// scores for this row's next token), chooses the token, appends it and
// reports it; Done tells whether the sequence has ended.
func (c *Chooser) Next(s *Sequence, logits []float32) (int, error) {
	if s.done {
		return 0, fmt.Errorf("generate: sequence already ended")
	}
	if len(logits) != c.run.vocab {
		return 0, fmt.Errorf("generate: logits row has %d entries, want %d", len(logits), c.run.vocab)
	}
	if s.scores == nil {
		s.scores = make([]float32, c.run.vocab)
	}
	copy(s.scores, logits)
	c.run.process(s.scores, s.ids, s.lim, 1)
	token, err := c.run.choose(s.scores)
	if err != nil {
		return 0, fmt.Errorf("generate: %w", err)
	}
	s.ids = append(s.ids, token)
	s.done = c.run.isEOS(token) || len(s.ids) >= s.lim.maxTotal
	if s.done {
		s.scores = nil
	}
	return token, nil
}

// Done reports whether the sequence has ended (EOS or its length limit).
func (s *Sequence) Done() bool { return s.done }

// New returns the generated ids (without the prompt), as Generate returns
// them.
func (s *Sequence) New() []int { return slices.Clone(s.ids[s.lim.promptLen:]) }
