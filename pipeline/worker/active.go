package worker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
)

// Steps recorded in a shard's active record.
const (
	stepDecode = "decode"
	stepModel  = "model"
	// stepModelAlone is a suspect's model run, on its own.
	stepModelAlone = "model, alone"
)

// activeImages is the set of a shard's images at a risky step, mirrored
// to the job state (jobstate.Active) before each step starts, so that if
// the worker dies there the next delivery knows which images it was on.
type activeImages struct {
	job, shard string
	delivery   int
	mu         sync.Mutex
	images     map[string]string
	// suspects are images a previous delivery died on; isolated ones are
	// decoded and run alone.
	suspects map[string]bool
}

// track records that the shard's images enter step, before they do. A
// failure to record is logged, not fatal: the record is a diagnosis.
func (w *Worker) track(run *shardRun, step string, keys ...string) {
	a := run.active
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range keys {
		a.images[k] = step
	}
	w.putActive(a)
}

// untrack records that key left its step.
func (w *Worker) untrack(run *shardRun, keys ...string) {
	a := run.active
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range keys {
		delete(a.images, k)
	}
	w.putActive(a)
}

// putActive writes a's record; a.mu is held.
func (w *Worker) putActive(a *activeImages) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := w.cfg.Jobs.PutActive(ctx, a.job, a.shard, jobstate.Active{
		Worker: w.cfg.Name, Delivery: a.delivery, Images: maps.Clone(a.images)})
	if err != nil {
		w.cfg.Log.Warn("cannot record the images being processed", "job", a.job, "shard", a.shard, "err", err)
	}
}

// clearActive removes the shard's record once the delivery ends without
// the worker dying.
func (w *Worker) clearActive(run *shardRun) {
	if a := run.active; a != nil {
		a.mu.Lock()
		clear(a.images)
		w.putActive(a)
		a.mu.Unlock()
	}
}

// diedOn reads the record a previous delivery of the shard left behind
// when its worker died; it returns the images it was on (nil if none).
func (w *Worker) diedOn(ctx context.Context, job, shard string, delivery int) (jobstate.Active, bool) {
	if delivery <= 1 {
		return jobstate.Active{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	a, ok, err := w.cfg.Jobs.GetActive(ctx, job, shard)
	if err != nil {
		w.cfg.Log.Warn("cannot read the images a previous delivery was on", "job", job, "shard", shard, "err", err)
		return jobstate.Active{}, false
	}
	if !ok || a.Delivery >= delivery || len(a.Images) == 0 {
		return jobstate.Active{}, false
	}
	return a, true
}

// describeActive names the images of a record and their steps for
// reasons: `image "a.png" (decode)`.
func describeActive(a jobstate.Active) string {
	keys := slices.Collect(maps.Keys(a.Images))
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%q (%s)", k, a.Images[k])
	}
	noun := "image"
	if len(keys) > 1 {
		noun = "images"
	}
	return fmt.Sprintf("worker %s died during delivery %d while processing %s %s", a.Worker, a.Delivery, noun, strings.Join(parts, ", "))
}

// watchActive sets up the shard's active record for this delivery. When a
// previous delivery died on an image it was processing alone on purpose
// (see blamed), that image gets an error row naming what happened and is
// skipped; otherwise the images it died on become suspects, decoded and
// run one at a time, so that a further death names one image and a death
// that was not theirs (a node lost, a kill from outside) costs no image.
func (w *Worker) watchActive(ctx context.Context, run *shardRun, task queue.ShardTask, delivery int) {
	run.active = &activeImages{job: task.Job, shard: task.Shard, delivery: delivery,
		images: map[string]string{}, suspects: map[string]bool{}}
	died, ok := w.diedOn(ctx, task.Job, task.Shard, delivery)
	if !ok {
		return
	}
	reason := describeActive(died)
	w.cfg.Log.Warn("a previous delivery died on these images", "job", task.Job, "shard", task.Shard, "reason", reason)
	culprit := blamed(died)
	for i := range run.rows {
		r := &run.rows[i]
		if _, on := died.Images[r.Key]; !on || r.Err != "" {
			continue
		}
		if r.Key == culprit {
			r.Err = "killed worker: " + reason
			continue
		}
		run.active.suspects[r.Key] = true
	}
}

// blamed returns the image a dead delivery's record puts the death on: its
// only image, when the worker was processing it alone on purpose (a decode
// large enough to be tracked, a suspect's decode or a suspect's model run).
// It returns "" when the record names several images, or one image at the
// model in an ordinary batch (the rest of the batch may have been other
// shards' images, and the death anything else's).
func blamed(died jobstate.Active) string {
	if len(died.Images) != 1 {
		return ""
	}
	for key, step := range died.Images {
		if step == stepDecode || step == stepModelAlone {
			return key
		}
	}
	return ""
}
