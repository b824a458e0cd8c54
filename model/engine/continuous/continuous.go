// Package continuous schedules captioning with continuous batching: the
// image encoder runs on large batches ahead of the language model, and
// sequences that finish leave the decode batch between steps while newly
// encoded images are prefilled into their slots, so the device stays full
// until the queue is empty. It is independent of the device: a Backend
// supplies the model (the CPU one is tested here, the CUDA one plugs in the
// same way).
//
// Greedy results are identical to plain batches: each row's cache holds only
// its own steps (the backend pads shorter rows with masked steps). Sampling
// draws from the same distributions but in a different order.
//
// Running out of device memory (an error matching device.ErrOutOfMemory)
// never fails a request while a smaller batch may fit: the scheduler halves
// the encoder batch or the decode batch, puts the affected images back at
// the front of the queue and carries on.
package continuous

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"blipflow/model/device"
	"blipflow/model/generate"
)

// Encoded is one image after the image encoder: State is the backend's own
// (what Start needs), Embedding the image embedding when one was asked for.
type Encoded struct {
	State     any
	Embedding []float32
}

// Backend is the model as the scheduler drives it. Every call comes from
// the scheduler's one goroutine.
type Backend interface {
	// Encode runs the image encoder on the images (one preprocessed pixel
	// tensor each) and returns one Encoded per image, with its embedding
	// when embed is set.
	Encode(images [][]float32, embed bool) ([]Encoded, error)
	// Start prefills the language model for encoded images sharing one
	// prompt. It returns the rows (row i is imgs[i]), their first
	// next-token logits and, per row, the prompt ids for the token chooser.
	Start(imgs []Encoded, prompt string) (Rows, [][]float32, [][]int, error)
	// Vocab is the language model's vocabulary size.
	Vocab() int
}

// Rows is a running decode batch. Step must leave the rows unchanged when
// it fails with an out-of-memory error, so the scheduler can shrink the
// batch and retry.
type Rows interface {
	// Len is the number of rows.
	Len() int
	// Step feeds one token per row and returns the next-token logits.
	Step(tokens []int) ([][]float32, error)
	// Select keeps the rows listed in src, in that order.
	Select(src []int) error
	// Admit appends other's rows after these (other is consumed).
	Admit(other Rows) error
	// Release frees the rows' memory once the last one has left.
	Release()
}

// Request is one image to caption and/or embed.
type Request struct {
	Pixels  []float32
	Prompt  string
	Caption bool
	Embed   bool
}

// Result is a request's outcome: the generated ids (without the prompt)
// and the embedding, or the error that concerns this image only.
type Result struct {
	IDs       []int
	Embedding []float32
	Err       error
}

// Config tunes a Scheduler.
type Config struct {
	// EncodeBatch is the number of images per encoder run (default 32).
	EncodeBatch int
	// MaxRows caps the decode batch (default 32); set it from
	// device.Sizing.DecodeBatch on a GPU.
	MaxRows int
	// AdmitMin is the least number of free slots worth a prefill while
	// rows are decoding (default 1: admit as soon as a slot frees).
	AdmitMin int
	// Generation configures the token choice (greedy or sampling only).
	Generation generate.Config
	// Observe, when set, receives the batch occupancy after each step.
	Observe func(Stats)
}

// Stats describes a decode step.
type Stats struct {
	// Rows is the number of rows the step ran; MaxRows the batch's size.
	Rows, MaxRows int
	// Queued is images waiting for the encoder; Encoded those waiting for
	// a decode slot.
	Queued, Encoded int
	// Shrinks counts the out-of-memory reductions so far.
	Shrinks int
}

// Scheduler runs requests through a Backend with continuous batching. Its
// methods are safe for concurrent use; the model runs on one goroutine.
type Scheduler struct {
	b       Backend
	cfg     Config
	chooser *generate.Chooser

	in     chan *job
	done   chan struct{}
	closed chan struct{}
	once   sync.Once

	// Owned by the loop goroutine.
	pending  []*job
	encoded  []*waiting
	rows     Rows
	active   []*running
	maxRows  int
	encBatch int
	shrinks  int
}

type job struct {
	req    Request
	result chan<- indexed
	index  int
	ctx    context.Context
}

type indexed struct {
	i int
	r Result
}

type waiting struct {
	j   *job
	enc Encoded
}

type running struct {
	waiting
	seq  *generate.Sequence
	next int
}

// New starts a scheduler over b.
func New(b Backend, cfg Config) (*Scheduler, error) {
	if cfg.EncodeBatch <= 0 {
		cfg.EncodeBatch = 32
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = 32
	}
	if cfg.AdmitMin <= 0 {
		cfg.AdmitMin = 1
	}
	ch, err := generate.NewChooser(cfg.Generation, b.Vocab())
	if err != nil {
		return nil, fmt.Errorf("continuous batching: %w", err)
	}
	s := &Scheduler{b: b, cfg: cfg, chooser: ch, in: make(chan *job, 1024), done: make(chan struct{}),
		closed: make(chan struct{}), maxRows: cfg.MaxRows, encBatch: cfg.EncodeBatch}
	go s.loop()
	return s, nil
}

// Submit queues the requests and waits for their results, in order. A
// cancelled ctx returns its error; requests not yet started are skipped.
func (s *Scheduler) Submit(ctx context.Context, reqs []Request) ([]Result, error) {
	results := make(chan indexed, len(reqs))
	for i, r := range reqs {
		select {
		case s.in <- &job{req: r, result: results, index: i, ctx: ctx}:
		case <-s.closed:
			return nil, errors.New("continuous batching: scheduler closed")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	out := make([]Result, len(reqs))
	for range reqs {
		select {
		case r := <-results:
			out[r.i] = r.r
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, errors.New("continuous batching: scheduler closed before the requests were done")
		}
	}
	return out, nil
}

// Close stops accepting requests and returns once the queued ones are done.
func (s *Scheduler) Close() {
	s.once.Do(func() { close(s.closed) })
	<-s.done
}

// stats describes the batch; called on the loop goroutine.
func (s *Scheduler) stats() Stats {
	return Stats{Rows: len(s.active), MaxRows: s.maxRows, Queued: len(s.pending), Encoded: len(s.encoded), Shrinks: s.shrinks}
}

func (s *Scheduler) loop() {
	defer close(s.done)
	for {
		if !s.receive() {
			return
		}
		s.encode()
		s.admit()
		s.step()
	}
}

// receive moves submitted jobs into the queue, blocking only when there is
// nothing else to do; it reports false once closed and drained.
func (s *Scheduler) receive() bool {
	idle := len(s.pending) == 0 && len(s.encoded) == 0 && len(s.active) == 0
	if idle {
		select {
		case j := <-s.in:
			s.pending = append(s.pending, j)
		case <-s.closed:
			select {
			case j := <-s.in:
				s.pending = append(s.pending, j)
			default:
				return false
			}
		}
	}
	for {
		select {
		case j := <-s.in:
			s.pending = append(s.pending, j)
		default:
			return true
		}
	}
}

func (j *job) finish(r Result) {
	if j.ctx.Err() == nil {
		j.result <- indexed{j.index, r}
	}
}

// encode runs the image encoder when fewer encoded images wait than the
// decode batch could take.
func (s *Scheduler) encode() {
	for len(s.pending) > 0 && len(s.encoded) < s.maxRows {
		n := min(s.encBatch, len(s.pending))
		batch := make([]*job, 0, n)
		for _, j := range s.pending[:n] {
			if j.ctx.Err() == nil {
				batch = append(batch, j)
			}
		}
		if len(batch) == 0 {
			s.pending = s.pending[n:]
			continue
		}
		embed := false
		images := make([][]float32, len(batch))
		for i, j := range batch {
			images[i] = j.req.Pixels
			embed = embed || j.req.Embed
		}
		encs, err := s.b.Encode(images, embed)
		if err == nil && len(encs) != len(batch) {
			err = fmt.Errorf("continuous batching: encoder returned %d images for %d", len(encs), len(batch))
		}
		if errors.Is(err, device.ErrOutOfMemory) && s.encBatch > 1 {
			s.encBatch = max(1, s.encBatch/2) // the same images are retried in smaller runs
			s.shrinks++
			continue
		}
		s.pending = s.pending[n:]
		if err != nil {
			for _, j := range batch {
				j.finish(Result{Err: fmt.Errorf("image encoder: %w", err)})
			}
			continue
		}
		for i, j := range batch {
			if !j.req.Caption {
				j.finish(Result{Embedding: encs[i].Embedding})
				continue
			}
			s.encoded = append(s.encoded, &waiting{j: j, enc: encs[i]})
		}
	}
}

// admit prefills waiting images into the free decode slots: those at the
// front of the queue that share the first one's prompt.
func (s *Scheduler) admit() {
	for len(s.encoded) > 0 {
		free := s.maxRows - len(s.active)
		if free <= 0 || (len(s.active) > 0 && free < min(s.cfg.AdmitMin, s.maxRows)) {
			return
		}
		prompt := s.encoded[0].j.req.Prompt
		k := 0
		for k < len(s.encoded) && k < free && s.encoded[k].j.req.Prompt == prompt {
			k++
		}
		group := s.encoded[:k]
		encs := make([]Encoded, k)
		for i, w := range group {
			encs[i] = w.enc
		}
		rows, first, prompts, err := s.b.Start(encs, prompt)
		if err == nil && (rows.Len() != k || len(first) != k || len(prompts) != k) {
			err = fmt.Errorf("continuous batching: prefill returned %d rows for %d images", rows.Len(), k)
		}
		if errors.Is(err, device.ErrOutOfMemory) && (k > 1 || len(s.active) > 0) {
			s.maxRows = max(1, min(s.maxRows, len(s.active)+k)/2)
			s.shrinks++
			if len(s.active) >= s.maxRows {
				return
			}
			continue
		}
		s.encoded = s.encoded[k:]
		if err != nil {
			for _, w := range group {
				w.j.finish(Result{Err: fmt.Errorf("prefill: %w", err)})
			}
			continue
		}
		var keep []int
		var joined []*running
		for i, w := range group {
			r := &running{waiting: *w}
			seq, err := s.chooser.Start(prompts[i])
			if err == nil {
				r.seq = seq
				r.next, err = s.chooser.Next(seq, first[i])
			}
			switch {
			case err != nil:
				w.j.finish(Result{Err: err})
			case seq.Done():
				w.j.finish(Result{IDs: seq.New(), Embedding: w.enc.Embedding})
			default:
				keep = append(keep, i)
				joined = append(joined, r)
			}
		}
		if len(keep) == 0 {
			rows.Release()
			continue
		}
		if len(keep) < k {
			if err := rows.Select(keep); err != nil {
				rows.Release()
				s.failAll(joined, fmt.Errorf("dropping finished rows: %w", err))
				continue
			}
		}
		if s.rows == nil || len(s.active) == 0 {
			s.rows = rows
		} else if err := s.rows.Admit(rows); err != nil {
			rows.Release()
			s.failAll(joined, fmt.Errorf("admitting rows: %w", err))
			continue
		}
		s.active = append(s.active, joined...)
	}
}

func (s *Scheduler) failAll(rs []*running, err error) {
	for _, r := range rs {
		r.j.finish(Result{Err: err})
	}
}

// step advances every running row by one token; finished rows leave.
func (s *Scheduler) step() {
	if len(s.active) == 0 {
		return
	}
	tokens := make([]int, len(s.active))
	for i, r := range s.active {
		tokens[i] = r.next
	}
	logits, err := s.rows.Step(tokens)
	if err == nil && len(logits) != len(tokens) {
		err = fmt.Errorf("continuous batching: step returned %d rows for %d", len(logits), len(tokens))
	}
	if errors.Is(err, device.ErrOutOfMemory) && len(s.active) > 1 {
		s.evict(len(s.active) / 2)
		return
	}
	if err != nil {
		s.failAll(s.active, fmt.Errorf("decode step: %w", err))
		s.release()
		return
	}
	stepped := len(s.active)
	var keep []int
	var still []*running
	for i, r := range s.active {
		tok, err := s.chooser.Next(r.seq, logits[i])
		switch {
		case err != nil:
			r.j.finish(Result{Err: err})
		case r.seq.Done():
			r.j.finish(Result{IDs: r.seq.New(), Embedding: r.enc.Embedding})
		default:
			r.next = tok
			keep = append(keep, i)
			still = append(still, r)
		}
	}
	if len(keep) < len(s.active) && len(keep) > 0 {
		if err := s.rows.Select(keep); err != nil {
			s.failAll(still, fmt.Errorf("dropping finished rows: %w", err))
			still = nil
		}
	}
	s.active = still
	if len(still) == 0 {
		s.release()
	}
	if s.cfg.Observe != nil {
		st := s.stats()
		st.Rows = stepped
		s.cfg.Observe(st)
	}
}

// release drops the running batch.
func (s *Scheduler) release() {
	if s.rows != nil {
		s.rows.Release()
	}
	s.active, s.rows = nil, nil
}

// evict shrinks the decode batch to n rows after an out-of-memory step: the
// most recently admitted rows go back to the front of the encoded queue and
// restart from their encoded image (greedy decoding gives them the same
// result).
func (s *Scheduler) evict(n int) {
	keep := make([]int, n)
	for i := range keep {
		keep[i] = i
	}
	if err := s.rows.Select(keep); err != nil {
		s.failAll(s.active, fmt.Errorf("shrinking the decode batch: %w", err))
		s.release()
		return
	}
	back := make([]*waiting, 0, len(s.active)-n+len(s.encoded))
	for _, r := range s.active[n:] {
		back = append(back, &waiting{j: r.j, enc: r.enc})
	}
	s.encoded = append(back, s.encoded...)
	s.active = s.active[:n]
	s.maxRows = n
	s.shrinks++
}
