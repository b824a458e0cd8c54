// Package coordinator turns a dataset into a job: it lists the input, cuts
// it into stable shards, publishes them (idempotently) to the work queue,
// follows the job's progress in the job state, and writes the manifest
// when every shard is done or dead-lettered. A restarted coordinator picks
// up the job where the last one left it.
package coordinator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"blipflow/pipeline"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/metrics"
	"blipflow/pipeline/queue"
	"blipflow/sharding"
	"blipflow/storage"
)

// Config sets up a Coordinator. JS, Queue, Jobs and OpenStore are required.
type Config struct {
	JS    jetstream.JetStream
	Queue *queue.Queue
	Jobs  *jobstate.Store
	// OpenStore opens input and output locations.
	OpenStore func(ctx context.Context, location string) (storage.Store, error)
	// NewInput makes the lister of an input location (nil:
	// sharding.OpenInput with the request's InputOptions and OpenStore).
	NewInput func(ctx context.Context, location string) (sharding.Input, error)
	// PollInterval is how often Follow reads the job state (1s).
	PollInterval time.Duration
	// Metrics receives the coordinator's metrics (nil: unregistered ones).
	Metrics *metrics.Coordinator
	// Log receives structured logs (nil: slog.Default()).
	Log *slog.Logger
}

// Coordinator submits and follows jobs.
type Coordinator struct {
	cfg Config
}

// New checks cfg and returns a Coordinator.
func New(cfg Config) (*Coordinator, error) {
	switch {
	case cfg.JS == nil:
		return nil, errors.New("coordinator config: no JetStream")
	case cfg.Queue == nil:
		return nil, errors.New("coordinator config: no queue")
	case cfg.Jobs == nil:
		return nil, errors.New("coordinator config: no job state store")
	case cfg.OpenStore == nil:
		return nil, errors.New("coordinator config: no OpenStore")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewCoordinator(prometheus.NewRegistry())
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Coordinator{cfg: cfg}, nil
}

// Request describes a job to run.
type Request struct {
	// ID names the job (empty: JobID of the request, so the same request
	// is the same job).
	ID string
	// Input and Output are locations (s3://bucket/prefix, a folder).
	Input, Output string
	Task          pipeline.Task
	ShardSize     int
	Filter        sharding.Filter
	// InputOptions say how to read Input (a folder, a manifest, tars).
	InputOptions sharding.InputOptions
	// Dedup processes each image content once: later copies become
	// duplicate rows (see jobstate.Dedup).
	Dedup bool
	// DedupTable is an earlier results table (a file path or URL) whose
	// contents count as processed; it implies Dedup.
	DedupTable string
	// Model identifies the model the job is for: its content fingerprint
	// when the coordinator loaded it (local mode), else the name given.
	// Another model makes another job.
	Model string
	// Checker, when the coordinator has the model the job runs with
	// (local mode), checks the task before anything is published.
	Checker pipeline.Model
	// AllowLocalPaths lets a manifest name local paths and s3://
	// locations outside its own folder (or --base).
	AllowLocalPaths bool
	// AllowPrivateAddresses lets a manifest's URLs reach loopback,
	// link-local and private addresses.
	AllowPrivateAddresses bool
}

// filterSummary describes f for the job spec.
func filterSummary(f sharding.Filter) string {
	exts := f.Extensions
	if exts == nil {
		exts = sharding.DefaultExtensions
	}
	return fmt.Sprintf("ext=%s min=%d max=%d", strings.Join(exts, ","), f.MinSize, f.MaxSize)
}

// openInput makes the lister of the request's input.
func (c *Coordinator) openInput(ctx context.Context, req Request) (sharding.Input, error) {
	if c.cfg.NewInput != nil {
		return c.cfg.NewInput(ctx, req.Input)
	}
	return sharding.OpenInput(ctx, req.Input, req.InputOptions, c.cfg.OpenStore)
}

// JobID derives a job id from what the request computes. Input and Output
// should be normalised locations (a store's URL), so that spellings of the
// same folder (out, out/, ./out) make the same job.
func JobID(req Request) string {
	h := sha256.New()
	for _, part := range []string{req.Input, req.Output, req.Task.Name(), req.Task.Prompt,
		fmt.Sprint(req.ShardSize), filterSummary(req.Filter)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	if req.Dedup || req.DedupTable != "" {
		fmt.Fprintf(h, "dedup\x00%s\x00", req.DedupTable)
	}
	if !req.InputOptions.IsZero() {
		fmt.Fprintf(h, "input\x00%s\x00", req.InputOptions)
	}
	if req.Model != "" {
		fmt.Fprintf(h, "model\x00%s\x00", req.Model)
	}
	if req.Task.PromptColumn != "" || req.Task.Generation != "" {
		fmt.Fprintf(h, "generation\x00%s\x00%s\x00", req.Task.PromptColumn, req.Task.Generation)
	}
	return "job-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// Submit registers the job, lists and shards its input and publishes the
// shards that are neither published yet nor finished. Submitting a
// published job again changes nothing; a coordinator that died while
// publishing re-publishes, and the stream drops the duplicates.
func (c *Coordinator) Submit(ctx context.Context, req Request) (jobstate.Spec, error) {
	if req.ID != "" {
		if err := sharding.ValidID(req.ID); err != nil {
			return jobstate.Spec{}, fmt.Errorf("job: %w", err)
		}
	}
	if req.ShardSize <= 0 {
		return jobstate.Spec{}, fmt.Errorf("shard size %d: want at least 1", req.ShardSize)
	}
	if req.Checker != nil {
		if err := pipeline.CheckTask(req.Checker, req.Task); err != nil {
			return jobstate.Spec{}, err
		}
	}
	req.Input, req.Output = storage.NormalizeLocation(req.Input), storage.NormalizeLocation(req.Output)
	input, err := c.openInput(ctx, req)
	if err != nil {
		return jobstate.Spec{}, fmt.Errorf("input %s: %w", req.Input, err)
	}
	output, err := c.cfg.OpenStore(ctx, req.Output)
	if err != nil {
		return jobstate.Spec{}, fmt.Errorf("output %s: %w", req.Output, err)
	}
	var sourceRoot string
	if m, ok := input.(sharding.ManifestInput); ok && !req.AllowLocalPaths {
		if sourceRoot, err = m.Root(); err != nil {
			return jobstate.Spec{}, fmt.Errorf("input %s: %w", req.Input, err)
		}
	}
	if req.ID == "" {
		named := req
		named.Input, named.Output = input.URL(), output.URL()
		req.ID = JobID(named)
	}
	var generation json.RawMessage
	if req.Task.Generation != "" {
		generation = json.RawMessage(req.Task.Generation)
	}
	created := time.Now().UTC()
	spec, err := c.cfg.Jobs.CreateSpec(ctx, jobstate.Spec{
		ID: req.ID, Input: input.URL(), Output: output.URL(), Task: req.Task.Name(), Prompt: req.Task.Prompt,
		PromptColumn: req.Task.PromptColumn, Generation: generation, Model: req.Model,
		ShardSize: req.ShardSize, Filter: filterSummary(req.Filter), CreatedAt: created,
		Dedup: dedupSpec(req), SourceRoot: sourceRoot, AllowPrivateAddresses: req.AllowPrivateAddresses,
	})
	if err != nil {
		return jobstate.Spec{}, err
	}
	log := c.cfg.Log.With("job", spec.ID)
	if !spec.CreatedAt.Equal(created) {
		log.Info("resuming the earlier job with the same input, output, model and settings",
			"started", spec.CreatedAt.Local().Format(time.DateTime), "output", spec.Output)
	}
	if spec.Published {
		if err := c.markLatest(ctx, output, spec.ID); err != nil {
			return jobstate.Spec{}, err
		}
		log.Info("job already published; following it", "shards", spec.Shards, "images", spec.Images)
		return spec, nil
	}

	if err := c.seedDedupTable(ctx, spec); err != nil {
		return jobstate.Spec{}, err
	}
	// The first item kept, before any shard is published: the prompt
	// column must exist, and the job becomes the output's latest.
	first := func(item sharding.Item) error {
		if col := req.Task.PromptColumn; col != "" {
			if _, ok := item.Extra[col]; !ok {
				return fmt.Errorf("prompt column %q is not a column of the input %s", col, spec.Input)
			}
		}
		return c.markLatest(ctx, output, spec.ID)
	}
	plan, err := c.planAndPublish(ctx, input, req, spec.ID, output, first)
	if err != nil {
		return jobstate.Spec{}, fmt.Errorf("job %s: %w", spec.ID, err)
	}
	if plan.items == 0 {
		return jobstate.Spec{}, fmt.Errorf("job %s: %w in %s (%s)", spec.ID, ErrNoImages, spec.Input, spec.Filter)
	}
	spec, err = c.cfg.Jobs.UpdateSpec(ctx, spec.ID, func(s *jobstate.Spec) {
		s.Published, s.Shards, s.Images = true, plan.shards, plan.images
	})
	if err != nil {
		return jobstate.Spec{}, err
	}
	log.Info("shards published", "published", plan.published, "duplicates", plan.duplicates,
		"skipped_finished", plan.shards-plan.published-plan.duplicates, "took", plan.took.Round(time.Millisecond).String())
	return spec, nil
}

// messageHeadroom is room left in a NATS message for headers.
const messageHeadroom = 4 << 10

// shardTask builds the shard's message, moving the key list to the output
// store when it would not fit in one message.
func (c *Coordinator) shardTask(ctx context.Context, output storage.Store, job string, shard sharding.Shard) (queue.ShardTask, error) {
	task := queue.ShardTask{Job: job, Shard: shard.ID, Keys: shard.Keys, Images: len(shard.Keys),
		Sources: shard.Sources, Extras: shard.Extras, Archive: shard.Archive}
	data, err := task.Encode()
	if err != nil {
		return queue.ShardTask{}, err
	}
	limit := c.cfg.JS.Conn().MaxPayload() - messageHeadroom
	if int64(len(data)) <= limit {
		return task, nil
	}
	var keys []byte
	if shard.Sources != nil || shard.Extras != nil {
		keys, err = json.Marshal(queue.ShardList{Keys: shard.Keys, Sources: shard.Sources, Extras: shard.Extras})
	} else {
		keys, err = json.Marshal(shard.Keys)
	}
	if err != nil {
		return queue.ShardTask{}, fmt.Errorf("shard %s key list: %w", shard.ID, err)
	}
	ref := KeyListFile(job, shard.ID)
	if err := output.Write(ctx, ref, keys); err != nil {
		return queue.ShardTask{}, fmt.Errorf("shard %s key list: %w", shard.ID, err)
	}
	task.Keys, task.Sources, task.Extras, task.KeysRef = nil, nil, nil, ref
	return task, nil
}

// KeyListFile is the output key of a large shard's key list.
func KeyListFile(job, shard string) string { return job + "/shardlists/" + shard + ".json" }

// ErrNoImages reports an input in which the filter kept no image.
var ErrNoImages = errors.New("no images found")

// LatestFile is the key, under a job's output, of a file naming the last
// job submitted there (its id on one line), so that `coordinator status
// --local --output OUT` and people find it without the id.
const LatestFile = "latest"

// markLatest records job as the latest job of output.
func (c *Coordinator) markLatest(ctx context.Context, output storage.Store, job string) error {
	if err := output.Write(ctx, LatestFile, []byte(job+"\n")); err != nil {
		return fmt.Errorf("job %s: mark it latest in %s: %w", job, output.URL(), err)
	}
	return nil
}

// Latest returns the id of the latest job submitted to output.
func Latest(ctx context.Context, output storage.Store) (string, error) {
	data, err := output.Read(ctx, LatestFile)
	if err != nil {
		return "", fmt.Errorf("latest job of %s: %w", output.URL(), err)
	}
	job := strings.TrimSpace(string(data))
	if err := sharding.ValidID(job); err != nil {
		return "", fmt.Errorf("latest job of %s: %w", output.URL(), err)
	}
	return job, nil
}
