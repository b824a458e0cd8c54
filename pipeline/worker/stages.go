package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"blipflow/internal/redact"
	"blipflow/pipeline"
	"blipflow/pipeline/metrics"
	"blipflow/storage"
)

// shardRun tracks the images of one shard delivery through the stages.
type shardRun struct {
	ctx    context.Context // canceled when the shard fails
	cancel context.CancelCauseFunc
	task   pipeline.Task
	input  storage.Store
	rows   []row
	left   atomic.Int64
	done   chan struct{} // closed when every image has its row

	// sourceRoot and allowPrivate are the job's limits on where images
	// are read (jobstate.Spec).
	sourceRoot   string
	allowPrivate bool

	// active, when set, mirrors the images at risky steps to the job
	// state (see active.go).
	active *activeImages

	// dedupScope, when not empty, is where the images' contents are
	// claimed: duplicates skip decoding and the model.
	dedupScope string
}

func newShardRun(ctx context.Context, task pipeline.Task, input storage.Store, keys []string) *shardRun {
	runCtx, cancel := context.WithCancelCause(ctx)
	r := &shardRun{ctx: runCtx, cancel: cancel, task: task, input: input,
		rows: make([]row, len(keys)), done: make(chan struct{})}
	for i, key := range keys {
		r.rows[i].Key = key
	}
	r.left.Store(int64(len(keys)))
	if len(keys) == 0 {
		close(r.done)
	}
	return r
}

// finish marks one image as through all stages.
func (r *shardRun) finish() {
	if r.left.Add(-1) == 0 {
		close(r.done)
	}
}

// fail stops the shard's remaining work; the first cause wins.
func (r *shardRun) fail(err error) { r.cancel(err) }

// completed returns how many images are through.
func (r *shardRun) completed() int { return len(r.rows) - int(r.left.Load()) }

// row is one output row under construction.
type row struct {
	Key       string
	Size      int64
	SHA256    string
	Width     int32
	Height    int32
	Err       string
	DecodeMS  float32
	ModelMS   float32
	Captions  []string
	TokenIDs  [][]int32
	Embedding []float32
	// DuplicateOf and DuplicateTable name the image that claimed the same
	// content first (see dedup.go).
	DuplicateOf    string
	DuplicateTable string
	// Source is where the image is read when it is not Key under the
	// job's input (a URL, a location, tar#member); Extra holds the
	// carried-through columns.
	Source string
	Extra  map[string]string
}

// item is one image moving through the stages.
type item struct {
	run    *shardRun
	idx    int
	data   []byte
	pixels []float32
	// loaded is set when data came with the item (a tar sample).
	loaded bool
}

func (it *item) row() *row { return &it.run.rows[it.idx] }

// suspect reports whether a previous delivery of the shard died while
// processing this image among others: it is decoded and run alone.
func (it *item) suspect() bool {
	a := it.run.active
	return a != nil && a.suspects[it.row().Key]
}

// startStages starts the reader, decoder and model goroutines; they stop
// when ctx ends.
func (w *Worker) startStages(ctx context.Context, wg *sync.WaitGroup) {
	for range w.cfg.Readers {
		wg.Go(func() { w.readLoop(ctx) })
	}
	for range w.cfg.Decoders {
		wg.Go(func() { w.decodeLoop(ctx) })
	}
	wg.Go(func() { w.modelLoop(ctx) })
}

// send passes it to the next stage unless ctx ends first.
func send(ctx context.Context, ch chan<- *item, it *item) bool {
	select {
	case ch <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// readLoop reads image bytes with retries. A missing object becomes an
// error row; a read that keeps failing (the store is unreachable) fails
// the shard, which is then retried later.
func (w *Worker) readLoop(ctx context.Context) {
	for {
		var it *item
		select {
		case <-ctx.Done():
			return
		case it = <-w.readCh:
		}
		if it.run.ctx.Err() != nil {
			it.run.finish()
			continue
		}
		r := it.row()
		start := time.Now()
		var err error
		it.data, err = w.readImage(it)
		w.cfg.Metrics.StageSeconds.WithLabelValues(metrics.StageRead).Observe(time.Since(start).Seconds())
		switch {
		case err == nil:
		case errors.As(err, new(rowError)):
			r.Err = err.Error()
			it.run.finish()
			continue
		case isNotExist(err):
			r.Err = "read: " + err.Error()
			it.run.finish()
			continue
		default:
			it.run.fail(err)
			it.run.finish()
			continue
		}
		r.Size = int64(len(it.data))
		sum := sha256.Sum256(it.data)
		r.SHA256 = hex.EncodeToString(sum[:])
		w.cfg.Metrics.BytesRead.Add(float64(len(it.data)))
		if it.run.dedupScope != "" {
			dup, err := w.claimContent(it.run.ctx, it.run.dedupScope, r)
			if err != nil || dup {
				if err != nil {
					it.run.fail(err)
				}
				it.data = nil
				it.run.finish()
				continue
			}
		}
		if !send(ctx, w.decodeCh, it) {
			return
		}
	}
}

// decodeLoop decodes and preprocesses; an undecodable image becomes an
// error row.
func (w *Worker) decodeLoop(ctx context.Context) {
	for {
		var it *item
		select {
		case <-ctx.Done():
			return
		case it = <-w.decodeCh:
		}
		if it.run.ctx.Err() != nil {
			it.run.finish()
			continue
		}
		r := it.row()
		start := time.Now()
		err := w.decode(it)
		r.DecodeMS = float32(time.Since(start).Microseconds()) / 1000
		if err != nil {
			if it.run.ctx.Err() == nil {
				r.Err = "decode: " + err.Error()
			}
			it.run.finish()
			continue
		}
		if !send(ctx, w.modelCh, it) {
			return
		}
	}
}

// costedPreprocessor is a Preprocessor that can tell an image's decode
// cost from its header (*imageproc.Processor).
type costedPreprocessor interface {
	DecodeCost(name string, data []byte) (int64, error)
}

// collectAbove is the decode cost above which the worker collects garbage
// before giving the budget back, so that the budget counts memory that
// is really free again (a collection per photograph would cost too much
// with a model's weights on the heap).
const collectAbove = 256 << 20

// decode decodes and preprocesses it's bytes into it.pixels, holding the
// image's decode cost of the worker's decode budget meanwhile.
func (w *Worker) decode(it *item) error {
	r := it.row()
	var cost int64
	if c, ok := w.prep.(costedPreprocessor); ok {
		var err error
		if cost, err = c.DecodeCost(r.Key, it.data); err != nil {
			it.data = nil
			return err
		}
		cost = min(cost, w.cfg.DecodeBudget)
		risky := cost > collectAbove || it.suspect()
		if it.suspect() {
			cost = w.cfg.DecodeBudget // a suspect decodes alone
		}
		if err := w.decodeMem.Acquire(it.run.ctx, cost); err != nil {
			return err
		}
		w.cfg.Metrics.DecodeBytes.Add(float64(cost))
		if risky {
			w.track(it.run, stepDecode, r.Key)
		}
		defer func() {
			if risky {
				w.untrack(it.run, r.Key)
				runtime.GC()
			}
			w.cfg.Metrics.DecodeBytes.Sub(float64(cost))
			w.decodeMem.Release(cost)
		}()
	}
	start := time.Now()
	img, err := w.prep.DecodeBytes(r.Key, it.data)
	decoded := time.Now()
	w.cfg.Metrics.StageSeconds.WithLabelValues(metrics.StageDecode).Observe(decoded.Sub(start).Seconds())
	it.data = nil
	if err != nil {
		return err
	}
	r.Width, r.Height = int32(img.Bounds().Dx()), int32(img.Bounds().Dy())
	it.pixels, err = w.prep.Preprocess(img)
	w.cfg.Metrics.StageSeconds.WithLabelValues(metrics.StagePreprocess).Observe(time.Since(decoded).Seconds())
	return err
}

// modelLoop gathers images (of any shard, one task at a time) into batches
// and runs the model.
func (w *Worker) modelLoop(ctx context.Context) {
	batch := make([]*item, 0, w.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	flush := func() {
		if len(batch) > 0 {
			w.runBatch(ctx, batch)
			batch = batch[:0]
		}
	}
	for {
		var it *item
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case it = <-w.modelCh:
			}
		} else {
			timer.Reset(w.cfg.BatchWait)
			select {
			case <-ctx.Done():
				return
			case it = <-w.modelCh:
			case <-timer.C:
				flush()
				continue
			}
		}
		if it.run.ctx.Err() != nil {
			it.run.finish()
			continue
		}
		if len(batch) > 0 && batch[0].run.task != it.run.task {
			flush()
		}
		if it.suspect() {
			flush()
			w.runBatch(ctx, []*item{it})
			continue
		}
		batch = append(batch, it)
		if len(batch) == w.cfg.BatchSize {
			flush()
		}
	}
}

// runBatch runs the model on batch. When the batch fails, halves of it
// run again until the images at fault are found alone: each gets an error
// row and the rest get their results. A failure that is not any image's
// (a *pipeline.BatchError, a canceled run, or every image failing alone)
// fails the shards of the images concerned, to be retried.
func (w *Worker) runBatch(ctx context.Context, batch []*item) {
	healthy := w.modelOK.Load() // the model's last run succeeded
	err := w.runModel(ctx, batch)
	if err == nil {
		return
	}
	if ctx.Err() != nil {
		w.failItems(batch, err)
		return
	}
	// A batch of several shards: each shard's part runs on its own first,
	// so that a batch failure fails only the shards it follows.
	groups := map[*shardRun][]*item{}
	var order []*shardRun
	for _, it := range batch {
		if _, ok := groups[it.run]; !ok {
			order = append(order, it.run)
		}
		groups[it.run] = append(groups[it.run], it)
	}
	for _, run := range order {
		part, partErr := groups[run], err
		if len(order) > 1 {
			if partErr = w.runModel(ctx, part); partErr == nil {
				continue
			}
		}
		if isBatchFailure(ctx, partErr) {
			w.failItems(part, partErr)
			continue
		}
		failed, last := w.isolate(ctx, part, partErr, healthy)
		if len(failed) == len(part) && len(part) > 1 {
			w.cfg.Log.Warn("every image of the batch failed alone; failing their shard", "err", last)
		}
		w.failItems(failed, last)
	}
}

// failItems fails the shards of items with err and marks them through.
func (w *Worker) failItems(items []*item, err error) {
	for _, it := range items {
		it.run.fail(err)
		it.run.finish()
	}
}

// isolate looks for the images of a failed batch (err) that fail alone,
// by running halves of it. Each image at fault gets its error row; it
// returns the images whose failure was not theirs (all of them when
// every image of several failed alone, or when a batch of one failed
// and the model's previous run had failed too) with the last such error.
func (w *Worker) isolate(ctx context.Context, batch []*item, err error, healthy bool) ([]*item, error) {
	if len(batch) == 1 && !healthy {
		return batch, err
	}
	var blamed []*item
	var blameErr []error
	var next func(part []*item, err error) ([]*item, error)
	next = func(part []*item, err error) ([]*item, error) {
		if len(part) == 1 {
			blamed = append(blamed, part[0])
			blameErr = append(blameErr, err)
			return nil, nil
		}
		var rest []*item
		var restErr error
		for _, half := range [][]*item{part[:len(part)/2], part[len(part)/2:]} {
			herr := w.runModel(ctx, half)
			switch {
			case herr == nil:
			case isBatchFailure(ctx, herr):
				rest, restErr = append(rest, half...), herr
			default:
				more, moreErr := next(half, herr)
				if len(more) > 0 {
					rest, restErr = append(rest, more...), moreErr
				}
			}
		}
		return rest, restErr
	}
	var rest []*item
	var restErr error
	if len(batch) == 1 {
		blamed, blameErr = batch, []error{err}
	} else {
		rest, restErr = next(batch, err)
	}
	if len(blamed) == len(batch) && len(batch) > 1 {
		// Every image fails alone: the model, not the images, is at fault.
		return batch, blameErr[len(blameErr)-1]
	}
	for i, it := range blamed {
		r := it.row()
		r.Err = "model: " + redact.Error(blameErr[i])
		it.pixels = nil
		w.cfg.Log.Warn("model failed on one image; giving it an error row", "image", r.Key, "err", blameErr[i])
		it.run.finish()
	}
	return rest, restErr
}

// isBatchFailure reports a model error that no image is to blame for.
func isBatchFailure(ctx context.Context, err error) bool {
	var be *pipeline.BatchError
	return ctx.Err() != nil || errors.As(err, &be) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded)
}

// runModel runs the model on batch and fills the rows; on error it leaves
// them untouched.
func (w *Worker) runModel(ctx context.Context, batch []*item) error {
	images := make([]pipeline.Image, len(batch))
	for i, it := range batch {
		images[i] = pipeline.Image{Key: it.row().Key, Pixels: it.pixels}
	}
	task := batch[0].run.task
	byRun := map[*shardRun][]string{}
	for _, it := range batch {
		byRun[it.run] = append(byRun[it.run], it.row().Key)
	}
	step := stepModel
	if len(batch) == 1 && batch[0].suspect() {
		step = stepModelAlone
	}
	for run, keys := range byRun {
		w.track(run, step, keys...)
	}
	defer func() {
		for run, keys := range byRun {
			w.untrack(run, keys...)
		}
	}()
	if task.PromptColumn != "" {
		for i, it := range batch {
			images[i].Prompt = it.row().Extra[task.PromptColumn]
		}
	}
	start := time.Now()
	results, err := guard("model run", func() ([]pipeline.Result, error) { return w.cfg.Model.Run(ctx, task, images) })
	elapsed := time.Since(start)
	w.cfg.Metrics.StageSeconds.WithLabelValues(metrics.StageModel).Observe(elapsed.Seconds())
	if err == nil && len(results) != len(batch) {
		err = fmt.Errorf("model %s returned %d results for %d images", w.cfg.Model.ID(), len(results), len(batch))
	}
	w.modelOK.Store(err == nil)
	if err != nil {
		return fmt.Errorf("model %s on a batch of %d: %w", w.cfg.Model.ID(), len(batch), err)
	}
	w.cfg.Metrics.BatchSize.Observe(float64(len(batch)))
	perImage := float32(elapsed.Microseconds()) / 1000 / float32(len(batch))
	for i, it := range batch {
		r, res := it.row(), results[i]
		r.ModelMS = perImage
		if res.Err != nil {
			r.Err = "model: " + res.Err.Error()
		} else {
			r.Captions, r.TokenIDs, r.Embedding = res.Captions, res.TokenIDs, res.Embedding
		}
		it.pixels = nil
		it.run.finish()
	}
	return nil
}

// guard runs fn, turning a panic into an error so that a bug in the model
// or the table writer fails one shard instead of the worker.
func guard[T any](what string, fn func() (T, error)) (result T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s panicked: %v", what, p)
		}
	}()
	return fn()
}
