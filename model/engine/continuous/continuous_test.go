package continuous

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"testing"

	"blipflow/model/device"
	"blipflow/model/generate"
)

const vocab = 16

// fakeLogits is a deterministic stand-in for the language model: a row's
// logits depend only on its image and its history, as a real row's do.
func fakeLogits(image int, history []int) []float32 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d:", image)
	for _, id := range history {
		fmt.Fprintf(h, "%d,", id)
	}
	x := h.Sum64()
	out := make([]float32, vocab)
	for v := range out {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out[v] = float32(x%1000) / 100
	}
	return out
}

// fakeBackend is a model whose images are numbered by their first pixel. It
// can run out of memory: encoder runs above encLimit images and decode
// batches above rowLimit() rows fail with device.ErrOutOfMemory.
type fakeBackend struct {
	mu       sync.Mutex
	encLimit int
	rowLimit func() int
	encodes  []int // images per Encode call
	starts   []int
	maxRows  int // largest batch stepped
	live     int // rows in the running batch (set by fakeRows)
	steps    int
}

func (b *fakeBackend) Vocab() int { return vocab }

func (b *fakeBackend) Encode(images [][]float32, embed bool) ([]Encoded, error) {
	if b.encLimit > 0 && len(images) > b.encLimit {
		return nil, fmt.Errorf("vision encoder: %w", device.ErrOutOfMemory)
	}
	b.encodes = append(b.encodes, len(images))
	out := make([]Encoded, len(images))
	for i, px := range images {
		out[i].State = int(px[0])
		if embed {
			out[i].Embedding = []float32{px[0], -px[0]}
		}
	}
	return out, nil
}

func prompt(image int) []int { return []int{1 + image%3, 2} }

func (b *fakeBackend) Start(imgs []Encoded, p string) (Rows, [][]float32, [][]int, error) {
	if b.rowLimit != nil && b.live+len(imgs) > b.rowLimit() {
		return nil, nil, nil, fmt.Errorf("kv cache: %w", device.ErrOutOfMemory)
	}
	b.starts = append(b.starts, len(imgs))
	r := &fakeRows{b: b}
	var first [][]float32
	var prompts [][]int
	for _, e := range imgs {
		img := e.State.(int)
		r.images = append(r.images, img)
		r.hist = append(r.hist, prompt(img))
		first = append(first, fakeLogits(img, prompt(img)))
		prompts = append(prompts, prompt(img))
	}
	return r, first, prompts, nil
}

type fakeRows struct {
	b      *fakeBackend
	images []int
	hist   [][]int
}

func (r *fakeRows) Len() int { return len(r.images) }

func (r *fakeRows) Step(tokens []int) ([][]float32, error) {
	if r.b.rowLimit != nil && len(tokens) > r.b.rowLimit() {
		return nil, fmt.Errorf("attention workspace: %w", device.ErrOutOfMemory)
	}
	if len(tokens) != len(r.images) {
		return nil, fmt.Errorf("%d tokens for %d rows", len(tokens), len(r.images))
	}
	r.b.steps++
	r.b.maxRows = max(r.b.maxRows, len(tokens))
	out := make([][]float32, len(tokens))
	for i, t := range tokens {
		r.hist[i] = append(r.hist[i], t)
		out[i] = fakeLogits(r.images[i], r.hist[i])
	}
	r.b.live = len(r.images)
	return out, nil
}

func (r *fakeRows) Select(src []int) error {
	images, hist := make([]int, len(src)), make([][]int, len(src))
	for i, s := range src {
		images[i], hist[i] = r.images[s], slices.Clone(r.hist[s])
	}
	r.images, r.hist = images, hist
	r.b.live = len(images)
	return nil
}

func (r *fakeRows) Release() { r.b.live = 0 }

func (r *fakeRows) Admit(o Rows) error {
	f := o.(*fakeRows)
	r.images = append(r.images, f.images...)
	r.hist = append(r.hist, f.hist...)
	r.b.live = len(r.images)
	return nil
}

// plain runs one image through generate.Generate alone: what a plain batch
// gives it.
func plain(t *testing.T, image int, cfg generate.Config) []int {
	t.Helper()
	d := &plainDecoder{image: image, hist: [][]int{prompt(image)}}
	out, err := generate.Generate(context.Background(), d, [][]float32{fakeLogits(image, prompt(image))}, [][]int{prompt(image)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out[0][0]
}

type plainDecoder struct {
	image int
	hist  [][]int
}

func (d *plainDecoder) Step(_ context.Context, tokens []int) ([][]float32, error) {
	out := make([][]float32, len(tokens))
	for i, tok := range tokens {
		d.hist[i] = append(d.hist[i], tok)
		out[i] = fakeLogits(d.image, d.hist[i])
	}
	return out, nil
}

func (d *plainDecoder) Select(src []int) error {
	h := make([][]int, len(src))
	for i, s := range src {
		h[i] = slices.Clone(d.hist[s])
	}
	d.hist = h
	return nil
}

func genConfig() generate.Config {
	n := 9
	return generate.Config{MaxNewTokens: &n, EOSTokenID: generate.TokenIDs{0, 5}} // two EOS ids: rows end at different steps
}

func requests(n int, embed bool) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{Pixels: []float32{float32(i)}, Caption: true, Embed: embed}
	}
	return reqs
}

func checkResults(t *testing.T, res []Result, first int, cfg generate.Config, embed bool) {
	t.Helper()
	for i, r := range res {
		img := first + i
		if r.Err != nil {
			t.Fatalf("image %d: %v", img, r.Err)
		}
		if want := plain(t, img, cfg); !slices.Equal(r.IDs, want) {
			t.Fatalf("image %d: continuous %v, plain %v", img, r.IDs, want)
		}
		if embed && (len(r.Embedding) != 2 || r.Embedding[0] != float32(img)) {
			t.Fatalf("image %d: embedding %v", img, r.Embedding)
		}
	}
}

func TestSameResultsAsPlainBatchesAndRowsLeaveAndJoin(t *testing.T) {
	b := &fakeBackend{}
	var stats []Stats
	s, err := New(b, Config{EncodeBatch: 8, MaxRows: 5, Generation: genConfig(), Observe: func(st Stats) { stats = append(stats, st) }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Submit(context.Background(), requests(40, true))
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, res, 0, genConfig(), true)
	if b.maxRows != 5 {
		t.Fatalf("largest decode batch %d, want the cap of 5", b.maxRows)
	}
	joinedMidway := false
	for i, n := range b.starts {
		joinedMidway = joinedMidway || (i > 0 && n < 5)
	}
	if !joinedMidway {
		t.Fatalf("no prefill took freed slots of a running batch: starts %v", b.starts)
	}
	full := 0
	for _, st := range stats {
		if st.Rows == st.MaxRows {
			full++
		}
	}
	if full < len(stats)/2 {
		t.Fatalf("the batch was full after only %d of %d steps", full, len(stats))
	}
	if slices.Max(b.encodes) != 8 {
		t.Fatalf("encoder batches %v, want runs of 8", b.encodes)
	}
}

func TestConcurrentSubmitsEachImageOnce(t *testing.T) {
	b := &fakeBackend{}
	s, err := New(b, Config{EncodeBatch: 4, MaxRows: 6, Generation: genConfig()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for shard := 0; shard < 8; shard++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reqs := requests(10, false)
			for i := range reqs {
				reqs[i].Pixels = []float32{float32(shard*10 + i)}
			}
			res, err := s.Submit(context.Background(), reqs)
			if err != nil {
				errs <- err
				return
			}
			for i, r := range res {
				if want := plain(t, shard*10+i, genConfig()); !slices.Equal(r.IDs, want) || r.Err != nil {
					errs <- fmt.Errorf("shard %d image %d: %v (%v), want %v", shard, i, r.IDs, r.Err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, n := range b.encodes {
		total += n
	}
	if total != 80 {
		t.Fatalf("encoded %d images for 80", total)
	}
}

func TestOutOfMemoryShrinksTheBatchAndLosesNothing(t *testing.T) {
	limit := 16
	b := &fakeBackend{encLimit: 3, rowLimit: func() int { return limit }}
	s, err := New(b, Config{EncodeBatch: 16, MaxRows: 16, Generation: genConfig()})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	b2 := b
	// Memory shrinks under a running batch: steps of more than 3 rows fail
	// from the fourth step on.
	b2.rowLimit = func() int {
		if b2.steps >= 3 {
			once.Do(func() { limit = 3 })
		}
		return limit
	}
	var stats []Stats
	s.cfg.Observe = func(st Stats) { stats = append(stats, st) }
	res, err := s.Submit(context.Background(), requests(30, true))
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, res, 0, genConfig(), true)
	if slices.Max(b.encodes) > 3 {
		t.Fatalf("encoder kept running %d images after failing above 3", slices.Max(b.encodes))
	}
	if b.maxRows <= 3 {
		t.Fatalf("the batch never ran above the later limit (max %d): the test did not exercise a step failure", b.maxRows)
	}
	last := stats[len(stats)-1]
	if last.MaxRows > 3 || last.Shrinks < 2 {
		t.Fatalf("after the failures: %+v, want at most 3 rows and shrinks of both encoder and decoder", last)
	}
}

func TestOneImageThatNeverFitsFailsAloneAsARowError(t *testing.T) {
	b := &fakeBackend{rowLimit: func() int { return 0 }}
	s, err := New(b, Config{MaxRows: 4, Generation: genConfig()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Submit(context.Background(), requests(3, false))
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !errors.Is(r.Err, device.ErrOutOfMemory) {
			t.Fatalf("image %d: %v, want an out-of-memory row error", i, r.Err)
		}
	}
}

func TestEmbedOnlySkipsTheDecoder(t *testing.T) {
	b := &fakeBackend{}
	s, _ := New(b, Config{Generation: genConfig()})
	reqs := requests(5, true)
	for i := range reqs {
		reqs[i].Caption = false
	}
	res, err := s.Submit(context.Background(), reqs)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.IDs != nil || r.Embedding[0] != float32(i) {
			t.Fatalf("image %d: %+v", i, r)
		}
	}
	if len(b.starts) != 0 {
		t.Fatal("embedding alone ran the language model")
	}
}

func TestBeamSearchIsRefusedAndClosedSchedulerRefusesWork(t *testing.T) {
	beams := 3
	if _, err := New(&fakeBackend{}, Config{Generation: generate.Config{NumBeams: &beams}}); err == nil {
		t.Fatal("beam search accepted")
	}
	s, _ := New(&fakeBackend{}, Config{Generation: genConfig()})
	s.Close()
	if _, err := s.Submit(context.Background(), requests(1, false)); err == nil {
		t.Fatal("closed scheduler accepted work")
	}
}
