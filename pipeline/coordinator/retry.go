package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/worker"
	"blipflow/schemas"
	"blipflow/sharding"
	"blipflow/storage"
)

// A retry round re-runs the failed images of a finished job: the images
// whose rows carry an error and those of dead-lettered shards. The round
// runs as a job of its own (RoundJobID) whose shards each re-run the
// failed keys of one of the job's shards; once they are through, each
// affected shard file of the job is rewritten (atomically) with the failed
// rows replaced by the new ones, the round's own files are removed, and
// the manifest is written again. Every image thus stays in exactly one
// row of the files the manifest lists. A retry that dies midway resumes
// its round when run again: the plan is kept in the output store and the
// round's shards are de-duplicated by the queue like any job's.

// RetryPlan is the work of one retry round.
type RetryPlan struct {
	// Job is the job being retried.
	Job   string `json:"job"`
	Round int    `json:"round"`
	// RoundJob is the job id the round's shards run under.
	RoundJob string       `json:"round_job"`
	Shards   []RetryShard `json:"shards"`
}

// RetryShard is one shard of a retry round.
type RetryShard struct {
	// Shard is the round's shard id: derived from the failed keys.
	Shard string `json:"shard"`
	// Replaces is the job's shard whose failed rows this one replaces.
	Replaces string `json:"replaces"`
	// Keys are the failed image keys, sorted.
	Keys []string `json:"keys"`
	// Sources and Extras parallel Keys for inputs that name where each
	// image is read (manifests of URLs or locations) and carry columns
	// through to the output.
	Sources []string            `json:"sources,omitempty"`
	Extras  []map[string]string `json:"extras,omitempty"`
}

// failedImage is one image to re-run: its key, where to read it ("" for
// the key under the job's input) and its carried-through columns.
type failedImage struct {
	key, source string
	extra       map[string]string
}

// ErrNothingToRetry reports a finished job without failed images.
var ErrNothingToRetry = errors.New("no failed images to retry")

// RoundJobID is the job id retry round n of job runs under.
func RoundJobID(job string, round int) string { return fmt.Sprintf("%s-retry%d", job, round) }

// RetryPlanKey is the output key of the plan of retry round n of job.
func RetryPlanKey(job string, round int) string {
	return fmt.Sprintf("%s/retries/round-%d.json", job, round)
}

// Retry re-runs the failed images of job (which must be complete), merges
// the new rows into the job's files, rewrites the manifest and returns it
// with the round. A round left unfinished by an earlier Retry is resumed
// instead of planning a new one. onStatus (may be nil) follows the round's
// own job. errors.Is(err, ErrNothingToRetry) when no image failed.
func (c *Coordinator) Retry(ctx context.Context, job string, onStatus func(Status)) (Manifest, jobstate.RetryRound, error) {
	st, err := c.Status(ctx, job)
	if err != nil {
		return Manifest{}, jobstate.RetryRound{}, err
	}
	spec := st.Spec
	switch {
	case spec.Parent != "":
		return Manifest{}, jobstate.RetryRound{}, fmt.Errorf("job %s is retry round of job %s: retry %s instead", job, spec.Parent, spec.Parent)
	case !st.Complete():
		return Manifest{}, jobstate.RetryRound{}, fmt.Errorf("job %s: %d of %d shards finished; retry once it is complete", job, st.Done+st.Failed, st.Shards)
	}
	output, err := c.cfg.OpenStore(ctx, spec.Output)
	if err != nil {
		return Manifest{}, jobstate.RetryRound{}, fmt.Errorf("job %s output: %w", job, err)
	}
	plan, round, err := c.retryPlan(ctx, output, st)
	if err != nil {
		return Manifest{}, jobstate.RetryRound{}, err
	}
	log := c.cfg.Log.With("job", job, "round", round.Round, "round_job", plan.RoundJob)
	log.Info("retry round started", "shards", round.Shards, "images", round.Images, "plan", round.Plan)
	if err := c.publishRound(ctx, output, spec, plan); err != nil {
		return Manifest{}, jobstate.RetryRound{}, err
	}
	rst, err := c.Follow(ctx, plan.RoundJob, onStatus)
	if err != nil {
		return Manifest{}, jobstate.RetryRound{}, fmt.Errorf("job %s retry round %d: %w", job, round.Round, err)
	}
	if round, err = c.mergeRound(ctx, output, plan, rst, round); err != nil {
		return Manifest{}, jobstate.RetryRound{}, err
	}
	round.Finished, round.FinishedAt = true, time.Now().UTC()
	if _, err := c.cfg.Jobs.UpdateSpec(ctx, job, func(s *jobstate.Spec) {
		if i := round.Round - 1; i < len(s.Retries) {
			s.Retries[i] = round
		}
	}); err != nil {
		return Manifest{}, jobstate.RetryRound{}, err
	}
	c.removeRoundFiles(ctx, output, rst, log)
	log.Info("retry round merged", "fixed", round.Fixed, "failing", round.Failing)
	if st, err = c.Status(ctx, job); err != nil {
		return Manifest{}, jobstate.RetryRound{}, err
	}
	m, err := c.Finish(ctx, st)
	return m, round, err
}

// retryPlan returns the plan of the job's unfinished round, or plans,
// stores and records a new round.
func (c *Coordinator) retryPlan(ctx context.Context, output storage.Store, st Status) (RetryPlan, jobstate.RetryRound, error) {
	spec := st.Spec
	if n := len(spec.Retries); n > 0 && !spec.Retries[n-1].Finished {
		round := spec.Retries[n-1]
		data, err := output.Read(ctx, round.Plan)
		if err != nil {
			return RetryPlan{}, round, fmt.Errorf("job %s retry round %d plan: %w", spec.ID, round.Round, err)
		}
		var plan RetryPlan
		if err := json.Unmarshal(data, &plan); err != nil {
			return RetryPlan{}, round, fmt.Errorf("job %s retry plan %s: %w", spec.ID, round.Plan, err)
		}
		return plan, round, nil
	}
	number := len(spec.Retries) + 1
	plan := RetryPlan{Job: spec.ID, Round: number, RoundJob: RoundJobID(spec.ID, number), Shards: []RetryShard{}}
	if err := sharding.ValidID(plan.RoundJob); err != nil {
		return RetryPlan{}, jobstate.RetryRound{}, fmt.Errorf("job %s retry round %d: %w", spec.ID, number, err)
	}
	failed, err := c.failedKeys(ctx, output, st)
	if err != nil {
		return RetryPlan{}, jobstate.RetryRound{}, err
	}
	ids := make([]string, 0, len(failed))
	for id := range failed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	images := 0
	for i, id := range ids {
		imgs := failed[id]
		slices.SortFunc(imgs, func(a, b failedImage) int { return strings.Compare(a.key, b.key) })
		images += len(imgs)
		rs := RetryShard{Replaces: id}
		var sources, extras bool
		for _, img := range imgs {
			rs.Keys = append(rs.Keys, img.key)
			rs.Sources = append(rs.Sources, img.source)
			rs.Extras = append(rs.Extras, img.extra)
			sources = sources || img.source != ""
			extras = extras || img.extra != nil
		}
		if !sources {
			rs.Sources = nil
		}
		if !extras {
			rs.Extras = nil
		}
		rs.Shard = fmt.Sprintf("%05d-%s", i, sharding.KeysHash(rs.Keys))
		plan.Shards = append(plan.Shards, rs)
	}
	if images == 0 {
		return RetryPlan{}, jobstate.RetryRound{}, fmt.Errorf("job %s: %w", spec.ID, ErrNothingToRetry)
	}
	data, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return RetryPlan{}, jobstate.RetryRound{}, fmt.Errorf("job %s retry plan: %w", spec.ID, err)
	}
	key := RetryPlanKey(spec.ID, number)
	if err := output.Write(ctx, key, append(data, '\n')); err != nil {
		return RetryPlan{}, jobstate.RetryRound{}, fmt.Errorf("job %s: write %s: %w", spec.ID, key, err)
	}
	round := jobstate.RetryRound{Round: number, Job: plan.RoundJob, Plan: key, Shards: len(plan.Shards),
		Images: images, StartedAt: time.Now().UTC()}
	spec, err = c.cfg.Jobs.UpdateSpec(ctx, spec.ID, func(s *jobstate.Spec) {
		if len(s.Retries) < number {
			s.Retries = append(s.Retries, round)
		}
	})
	if err != nil {
		return RetryPlan{}, jobstate.RetryRound{}, err
	}
	return plan, spec.Retries[number-1], nil
}

// failedKeys returns, by shard of the job, the keys of rows with an error
// and of every image of dead-lettered shards.
func (c *Coordinator) failedKeys(ctx context.Context, output storage.Store, st Status) (map[string][]failedImage, error) {
	failed := map[string][]failedImage{}
	var dead map[string][]failedImage
	for id, s := range st.States {
		switch {
		case s.State == jobstate.StateDone && s.ErrorRows > 0:
			_, rows, err := readRows(ctx, output, s.File)
			if err != nil {
				return nil, fmt.Errorf("job %s shard %s: %w", st.Spec.ID, id, err)
			}
			for _, r := range rows {
				if r.Error != "" {
					failed[id] = append(failed[id], failedImage{key: r.Key, source: retrySource(r.Source), extra: r.Extra})
				}
			}
		case s.State == jobstate.StateFailed:
			if dead == nil {
				var err error
				if dead, err = c.deadLetterKeys(ctx, output, st.Spec.ID); err != nil {
					return nil, err
				}
			}
			keys, ok := dead[id]
			if !ok {
				return nil, fmt.Errorf("job %s shard %s is dead-lettered but its dead letter (with its keys) is gone", st.Spec.ID, id)
			}
			failed[id] = slices.Clone(keys)
		}
	}
	return failed, nil
}

// retrySource is where a retry reads a failed row's image: its URL, its
// absolute location or its WebDataset "tar#member", or "" (the key under
// the job's input) for a source that is none of these.
func retrySource(source string) string {
	if !strings.Contains(source, "://") && !strings.HasPrefix(source, "/") {
		return ""
	}
	return source
}

// deadLetterKeys returns the images of the job's dead-lettered shards.
func (c *Coordinator) deadLetterKeys(ctx context.Context, output storage.Store, job string) (map[string][]failedImage, error) {
	letters, err := c.cfg.Queue.DeadLetters(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("job %s dead letters: %w", job, err)
	}
	images := map[string][]failedImage{}
	for _, dl := range letters {
		if dl.Task.Archive != "" {
			imgs, err := c.archiveImages(ctx, dl.Task.Archive)
			if err != nil {
				return nil, fmt.Errorf("job %s shard %s: %w", job, dl.Shard, err)
			}
			images[dl.Shard] = imgs
			continue
		}
		list := queue.ShardList{Keys: dl.Task.Keys, Sources: dl.Task.Sources, Extras: dl.Task.Extras}
		if dl.Task.KeysRef != "" {
			data, err := output.Read(ctx, dl.Task.KeysRef)
			if err != nil {
				return nil, fmt.Errorf("job %s shard %s key list: %w", job, dl.Shard, err)
			}
			if list, err = queue.DecodeShardList(data); err != nil {
				return nil, fmt.Errorf("job %s shard %s key list %s: %w", job, dl.Shard, dl.Task.KeysRef, err)
			}
		}
		for i, key := range list.Keys {
			img := failedImage{key: key}
			if list.Sources != nil {
				img.source = list.Sources[i]
			}
			if list.Extras != nil {
				img.extra = list.Extras[i]
			}
			images[dl.Shard] = append(images[dl.Shard], img)
		}
	}
	return images, nil
}

// archiveImages lists the samples of a dead-lettered WebDataset tar, each
// to be re-read as "tar#member" with its text members as extra columns.
func (c *Coordinator) archiveImages(ctx context.Context, location string) ([]failedImage, error) {
	root, key, err := sharding.SplitLocation(location)
	if err != nil {
		return nil, err
	}
	store, err := c.cfg.OpenStore(ctx, root)
	if err != nil {
		return nil, err
	}
	body, err := storage.OpenStream(ctx, store, key)
	if err != nil {
		return nil, fmt.Errorf("tar %s: %w", location, err)
	}
	defer body.Close()
	var imgs []failedImage
	err = sharding.ReadWebDataset(body, sharding.TarOptions{SkipImages: true}, func(s sharding.Sample) error {
		member := s.ImageMember
		if member == "" { // read as the sample key: the row gets the same error as before
			member = s.Key
		}
		img := failedImage{key: s.Key, source: location + "#" + member, extra: s.Extra}
		imgs = append(imgs, img)
		return nil
	})
	if err != nil && !errors.Is(err, sharding.ErrTruncated) {
		return nil, fmt.Errorf("tar %s: %w", location, err)
	}
	return imgs, nil
}

// publishRound registers the round's job (the job's work settings, and
// content claims in the job's dedup scope) and publishes its unfinished
// shards.
func (c *Coordinator) publishRound(ctx context.Context, output storage.Store, spec jobstate.Spec, plan RetryPlan) error {
	images := 0
	for _, s := range plan.Shards {
		images += len(s.Keys)
	}
	roundSpec, err := c.cfg.Jobs.CreateSpec(ctx, jobstate.Spec{
		ID: plan.RoundJob, Parent: spec.ID, Input: spec.Input, Output: spec.Output, Task: spec.Task,
		Prompt: spec.Prompt, ShardSize: spec.ShardSize, Filter: spec.Filter, Dedup: spec.Dedup,
		PromptColumn: spec.PromptColumn, Generation: spec.Generation, Model: spec.Model,
		SourceRoot: spec.SourceRoot, AllowPrivateAddresses: spec.AllowPrivateAddresses,
		CreatedAt: time.Now().UTC(),
	})
	if err != nil || roundSpec.Published {
		return err
	}
	states, err := c.cfg.Jobs.Shards(ctx, plan.RoundJob)
	if err != nil {
		return err
	}
	for _, s := range plan.Shards {
		if st, ok := states[s.Shard]; ok && (st.State == jobstate.StateDone || st.State == jobstate.StateFailed) {
			continue
		}
		task, err := c.shardTask(ctx, output, plan.RoundJob, sharding.Shard{ID: s.Shard, Keys: s.Keys, Sources: s.Sources, Extras: s.Extras})
		if err != nil {
			return err
		}
		dup, err := c.cfg.Queue.Publish(ctx, task)
		if err != nil {
			return err
		}
		if dup {
			c.cfg.Metrics.Duplicates.Inc()
		} else {
			c.cfg.Metrics.Published.Inc()
		}
	}
	_, err = c.cfg.Jobs.UpdateSpec(ctx, plan.RoundJob, func(s *jobstate.Spec) {
		s.Published, s.Shards, s.Images = true, len(plan.Shards), images
	})
	return err
}

// mergeRound rewrites each job shard the round got through with its failed
// rows replaced, and counts the round's fixed and still failing images.
// Shards merged by an earlier try of the same round are only counted.
func (c *Coordinator) mergeRound(ctx context.Context, output storage.Store, plan RetryPlan, rst Status, round jobstate.RetryRound) (jobstate.RetryRound, error) {
	states, err := c.cfg.Jobs.Shards(ctx, plan.Job)
	if err != nil {
		return round, err
	}
	round.Fixed, round.Failing = 0, 0
	for _, rs := range plan.Shards {
		got := rst.States[rs.Shard]
		if got.State != jobstate.StateDone {
			round.Failing += len(rs.Keys)
			continue
		}
		round.Fixed += got.Rows - got.ErrorRows
		round.Failing += got.ErrorRows
		orig := states[rs.Replaces]
		if orig.RetryRound >= round.Round {
			continue
		}
		if err := c.mergeShard(ctx, output, plan, rs, orig, got); err != nil {
			return round, err
		}
	}
	return round, nil
}

// mergeShard rewrites one shard file of the job with the round's rows in
// place of its failed ones (or, for a dead-lettered shard, writes it from
// the round's rows) and records the shard as done.
func (c *Coordinator) mergeShard(ctx context.Context, output storage.Store, plan RetryPlan, rs RetryShard, orig, got jobstate.ShardState) error {
	newMeta, retried, err := readRows(ctx, output, got.File)
	if err != nil {
		return fmt.Errorf("job %s retry round %d shard %s: %w", plan.Job, plan.Round, rs.Shard, err)
	}
	meta, rows := newMeta, retried
	state := jobstate.ShardState{State: jobstate.StateDone, Images: orig.Images, Model: got.Model,
		Worker: got.Worker, Deliveries: got.Deliveries, RetryRound: plan.Round}
	if orig.State == jobstate.StateDone {
		var old []schemas.Row
		if meta, old, err = readRows(ctx, output, orig.File); err != nil {
			return fmt.Errorf("job %s shard %s: %w", plan.Job, rs.Replaces, err)
		}
		if err := sameTableModel(meta, newMeta); err != nil {
			return fmt.Errorf("job %s shard %s: retry round %d: %w", plan.Job, rs.Replaces, plan.Round, err)
		}
		rows = MergeRows(old, retried)
		state.Model, state.Worker, state.Deliveries, state.UpdatedAt = orig.Model, orig.Worker, orig.Deliveries, orig.UpdatedAt
	}
	if state.Images == 0 {
		state.Images = len(rows)
	}
	meta.JobID, meta.ShardID, meta.CreatedAt = plan.Job, rs.Replaces, time.Now().UTC()
	var buf bytes.Buffer
	if err := schemas.WriteRows(&buf, meta, rows); err != nil {
		return fmt.Errorf("job %s shard %s: encode merged rows: %w", plan.Job, rs.Replaces, err)
	}
	file := worker.ShardFile(plan.Job, rs.Replaces)
	if err := output.Write(ctx, file, buf.Bytes()); err != nil {
		return fmt.Errorf("job %s: write %s: %w", plan.Job, file, err)
	}
	state.File, state.Rows = file, len(rows)
	for _, r := range rows {
		switch {
		case r.Error != "":
			state.ErrorRows++
		case r.Extra[worker.ExtraDuplicateOf] != "":
			state.Duplicates++
		}
	}
	return c.cfg.Jobs.PutShard(ctx, plan.Job, rs.Replaces, state)
}

// MergeRows returns old with every row that carries an error replaced by
// the retried row of the same key, followed by the retried rows whose key
// old lacks. A key keeps exactly one row; a retried row never replaces a
// row without an error.
func MergeRows(old, retried []schemas.Row) []schemas.Row {
	byKey := make(map[string]int, len(retried))
	for i, r := range retried {
		byKey[r.Key] = i
	}
	used := make([]bool, len(retried))
	merged := make([]schemas.Row, 0, len(old)+len(retried))
	for _, r := range old {
		if i, ok := byKey[r.Key]; ok {
			used[i] = true
			if r.Error != "" {
				r = retried[i]
			}
		}
		merged = append(merged, r)
	}
	for i, r := range retried {
		if !used[i] {
			merged = append(merged, r)
			used[i] = true
		}
	}
	return merged
}

// sameTableModel checks that rows of two tables can share one table.
func sameTableModel(a, b schemas.Meta) error {
	if a.Model != b.Model || a.ModelRevision != b.ModelRevision || a.Task != b.Task ||
		a.EmbeddingVectors != b.EmbeddingVectors || a.EmbeddingDim != b.EmbeddingDim {
		return fmt.Errorf("rows from model %s@%s (task %s, embedding %dx%d) cannot join a table of model %s@%s (task %s, embedding %dx%d): retry with the job's model",
			b.Model, b.ModelRevision, b.Task, b.EmbeddingVectors, b.EmbeddingDim,
			a.Model, a.ModelRevision, a.Task, a.EmbeddingVectors, a.EmbeddingDim)
	}
	return nil
}

// removeRoundFiles deletes the round's shard files and key lists once
// their rows are merged (best effort: leftovers are only logged).
func (c *Coordinator) removeRoundFiles(ctx context.Context, output storage.Store, rst Status, log *slog.Logger) {
	for id, s := range rst.States {
		for _, key := range []string{s.File, KeyListFile(rst.Spec.ID, id)} {
			if key == "" {
				continue
			}
			if err := output.Delete(ctx, key); err != nil {
				log.Warn("cannot remove a merged retry file", "file", key, "err", err)
			}
		}
	}
}
