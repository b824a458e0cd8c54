package engine

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/device"
	"blipflow/model/engine/continuous"
	"blipflow/model/generate"
)

// testImages returns the preprocessed fixture images, each repeated so the
// queue is longer than the decode batch.
func testImages(t *testing.T, e *Engine, repeat int) ([]string, [][]float32) {
	t.Helper()
	entries, err := os.ReadDir(fixtures.Path("images"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var pixels [][]float32
	for r := 0; r < repeat; r++ {
		for _, ent := range entries {
			px, err := e.Images.File(fixtures.Path("images", ent.Name()))
			if err != nil {
				t.Fatalf("%s: %v", ent.Name(), err)
			}
			names = append(names, ent.Name())
			pixels = append(pixels, px)
		}
	}
	return names, pixels
}

// continuousGen returns greedy settings with 10 new tokens and, as an extra
// EOS id, a token the model generates at different steps for different
// images, so rows leave the batch at different times.
func continuousGen(t *testing.T, e *Engine, pixels [][]float32) generate.Config {
	var gen generate.Config
	if err := gen.Set("max_new_tokens", "10"); err != nil {
		t.Fatal(err)
	}
	first := map[int]map[int]bool{} // token -> the steps it first appears at
	for _, ids := range plainCaptions(t, e, pixels, "", gen) {
		seen := map[int]bool{}
		for step, id := range ids {
			if !seen[id] {
				seen[id] = true
				if first[id] == nil {
					first[id] = map[int]bool{}
				}
				first[id][step] = true
			}
		}
	}
	best, spread := -1, 0
	for id, steps := range first {
		if len(steps) > spread || (len(steps) == spread && id < best) {
			best, spread = id, len(steps)
		}
	}
	if spread < 2 {
		t.Fatalf("no token starts at different steps for different images: %v", first)
	}
	eos := e.Generation.EOSTokenID
	ids := append(append([]int{}, eos...), best)
	if err := gen.Set("eos_token_id", strings.Join(strings.Fields(fmt.Sprint(ids)), ",")); err != nil {
		t.Fatal(err)
	}
	return gen
}

// plainCaptions captions all images in one plain batch.
func plainCaptions(t *testing.T, e *Engine, pixels [][]float32, prompt string, gen generate.Config) [][]int {
	t.Helper()
	var flat []float32
	for _, px := range pixels {
		flat = append(flat, px...)
	}
	caps, err := e.Caption(context.Background(), flat, len(pixels), prompt, gen)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]int, len(caps))
	for i, c := range caps {
		out[i] = c.IDs[0]
	}
	return out
}

// TestContinuousBatchingMatchesPlainBatches runs the fixture images through
// the tiny OPT checkpoint on the CPU with a decode batch of 3, rows ending at
// different steps, and checks every image gets the plain batch's ids and
// embedding, exactly once.
func TestContinuousBatchingMatchesPlainBatches(t *testing.T) {
	for _, model := range []string{"opt-tiny", "t5-tiny"} {
		t.Run(model, func(t *testing.T) { testContinuousMatchesPlain(t, model) })
	}
}

func testContinuousMatchesPlain(t *testing.T, model string) {
	e := open(t, model)
	names, pixels := testImages(t, e, 2)
	gen := continuousGen(t, e, pixels)
	// The two halves use different prompts (of different lengths), so rows
	// of different lengths share the batch's cache (T5: padded to one).
	half := len(pixels) / 2
	prompts := []string{"", "Question: what is shown in the image? Answer:"}
	want := append(plainCaptions(t, e, pixels[:half], prompts[0], gen), plainCaptions(t, e, pixels[half:], prompts[1], gen)...)
	lengths := map[int]bool{}
	for _, ids := range want {
		lengths[len(ids)] = true
	}
	if len(lengths) < 2 {
		t.Fatalf("every caption has the same length %v: the test would not make rows leave at different steps", lengths)
	}
	var flat []float32
	for _, px := range pixels {
		flat = append(flat, px...)
	}
	wantEmb, err := e.EmbedImages(context.Background(), flat, len(pixels))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var steps []continuous.Stats
	s, err := e.Continuous(gen, continuous.Config{EncodeBatch: 4, MaxRows: 3, Observe: func(st continuous.Stats) {
		mu.Lock()
		steps = append(steps, st)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Two "shards" submit at once and share the decode batch.
	var wg sync.WaitGroup
	got := make([][]continuous.Result, 2)
	errs := make([]error, 2)
	for k, part := range [][][]float32{pixels[:half], pixels[half:]} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reqs := make([]continuous.Request, len(part))
			for i, px := range part {
				reqs[i] = continuous.Request{Pixels: px, Prompt: prompts[k], Caption: true, Embed: true}
			}
			got[k], errs[k] = s.Submit(context.Background(), reqs)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all := append(got[0], got[1]...)
	dim := len(wantEmb) / len(pixels)
	for i, r := range all {
		if r.Err != nil {
			t.Fatalf("%s: %v", names[i], r.Err)
		}
		if !slices.Equal(r.IDs, want[i]) {
			t.Errorf("%s (#%d): continuous %v, plain %v", names[i], i, r.IDs, want[i])
		}
		if !closeEnough(r.Embedding, wantEmb[i*dim:(i+1)*dim]) {
			t.Errorf("%s (#%d): embedding differs from EmbedImages", names[i], i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	full := 0
	for _, st := range steps {
		if st.Rows > 3 {
			t.Fatalf("a step ran %d rows, above the cap of 3", st.Rows)
		}
		if st.Rows == 3 {
			full++
		}
	}
	t.Logf("%d images, %d decode steps, %d with the batch full", len(pixels), len(steps), full)
}

// oomBackend wraps the engine's backend and fails like a GPU out of memory:
// encoder runs above encLimit images and decode batches above rowLimit rows.
type oomBackend struct {
	continuous.Backend
	encLimit, rowLimit int
	live               *int
	failures           int
}

func (b *oomBackend) Encode(images [][]float32, embed bool) ([]continuous.Encoded, error) {
	if len(images) > b.encLimit {
		b.failures++
		return nil, fmt.Errorf("simulated cuMemAlloc: %w", device.ErrOutOfMemory)
	}
	return b.Backend.Encode(images, embed)
}

func (b *oomBackend) Start(imgs []continuous.Encoded, prompt string) (continuous.Rows, [][]float32, [][]int, error) {
	if *b.live+len(imgs) > b.rowLimit {
		b.failures++
		return nil, nil, nil, fmt.Errorf("simulated KV cache allocation: %w", device.ErrOutOfMemory)
	}
	rows, first, prompts, err := b.Backend.Start(imgs, prompt)
	if err != nil {
		return nil, nil, nil, err
	}
	return &countedRows{Rows: rows, live: b.live}, first, prompts, nil
}

// countedRows keeps the wrapper's count of rows holding memory.
type countedRows struct {
	continuous.Rows
	live *int
}

func (r *countedRows) Step(tokens []int) ([][]float32, error) {
	out, err := r.Rows.Step(tokens)
	*r.live = r.Rows.Len()
	return out, err
}

func (r *countedRows) Select(src []int) error {
	err := r.Rows.Select(src)
	*r.live = r.Rows.Len()
	return err
}

func (r *countedRows) Admit(o continuous.Rows) error {
	err := r.Rows.Admit(o.(*countedRows).Rows)
	*r.live = r.Rows.Len()
	return err
}

func (r *countedRows) Release() {
	r.Rows.Release()
	*r.live = 0
}

// TestContinuousBatchingShrinksOnOutOfMemory simulates a device that holds
// at most 2 encoder images and 2 decode rows while the scheduler is asked
// for 8: every image is still captioned, as in a plain batch.
func TestContinuousBatchingShrinksOnOutOfMemory(t *testing.T) {
	e := open(t, "opt-tiny")
	_, pixels := testImages(t, e, 1)
	gen := continuousGen(t, e, pixels)
	want := plainCaptions(t, e, pixels, "", gen)
	live := 0
	b := &oomBackend{Backend: newScheduled(e, e.Generation.Merge(gen)), encLimit: 2, rowLimit: 2, live: &live}
	var last continuous.Stats
	s, err := continuous.New(b, continuous.Config{EncodeBatch: 8, MaxRows: 8, Generation: e.Generation.Merge(gen),
		Observe: func(st continuous.Stats) { last = st }})
	if err != nil {
		t.Fatal(err)
	}
	reqs := make([]continuous.Request, len(pixels))
	for i, px := range pixels {
		reqs[i] = continuous.Request{Pixels: px, Caption: true}
	}
	res, err := s.Submit(context.Background(), reqs)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("image %d lost to a simulated OOM: %v", i, r.Err)
		}
		if !slices.Equal(r.IDs, want[i]) {
			t.Errorf("image %d: %v, plain %v", i, r.IDs, want[i])
		}
	}
	if b.failures == 0 || last.MaxRows > 2 || last.Shrinks == 0 {
		t.Fatalf("failures %d, last stats %+v: the batch did not shrink", b.failures, last)
	}
}

// closeEnough compares embeddings made in encoder batches of different
// sizes, which may round differently in the last bits.
func closeEnough(a, b []float32) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5*(1+math.Abs(float64(b[i]))) {
			return false
		}
	}
	return true
}
