package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"blipflow/internal/redact"
	"blipflow/internal/retry"
	"blipflow/pipeline"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/metrics"
	"blipflow/pipeline/queue"
	"blipflow/storage"
)

// errHandedBack marks a shard given back to the queue because the worker
// is stopping.
var errHandedBack = errors.New("worker stopping")

// handle processes one shard delivery and settles the message: ack after
// the output is written, a delayed Nak to retry, a dead letter on the last
// delivery, or a plain Nak when the worker stops mid-shard.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	start := time.Now()
	meta, err := msg.Metadata()
	if err != nil {
		w.cfg.Log.Error("shard message without metadata; dropping it", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	task, err := queue.DecodeShardTask(msg.Data())
	if err != nil {
		w.cfg.Log.Error("undecodable shard message; terminating it", "seq", meta.Sequence.Stream, "err", err)
		_ = msg.TermWithReason(err.Error())
		return
	}
	log := w.cfg.Log.With("job", task.Job, "shard", task.Shard, "delivery", meta.NumDelivered)
	log.Debug("shard started", "images", task.Images)

	stopBeats := w.heartbeat(ctx, msg, task, log)
	state, err := w.process(ctx, task, int(meta.NumDelivered), stopBeats.progress)
	stopBeats.stop()
	w.cfg.Metrics.StageSeconds.WithLabelValues(metrics.StageShard).Observe(time.Since(start).Seconds())

	switch {
	case err == nil:
		state.Deliveries = int(meta.NumDelivered)
		w.settleDone(ctx, msg, task, state, log)
	case ctx.Err() != nil || errors.Is(err, errHandedBack):
		w.cfg.Metrics.Shards.WithLabelValues("handed_back").Inc()
		log.Info("handing the shard back", "err", err)
		_ = msg.Nak()
	case retry.IsPermanent(err):
		w.settlePermanent(ctx, msg, meta, task, err, log)
	default:
		w.settleFailed(ctx, msg, meta, task, err, log)
	}
}

// settleDone records the written shard and acknowledges it.
func (w *Worker) settleDone(ctx context.Context, msg jetstream.Msg, task queue.ShardTask, state jobstate.ShardState, log *slog.Logger) {
	err := w.retry(ctx, "record shard "+task.Shard, func() error {
		return w.cfg.Jobs.PutShard(ctx, task.Job, task.Shard, state)
	})
	if err != nil {
		// The output is written; a redelivery rewrites the same file.
		log.Warn("cannot record the finished shard; it will be redelivered", "err", err)
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("ack failed; the shard may be redelivered and rewritten", "err", err)
	}
	w.cfg.Metrics.Shards.WithLabelValues("done").Inc()
	log.Debug("shard done", "rows", state.Rows, "error_rows", state.ErrorRows, "file", state.File)
}

// settleFailed schedules a retry, or on the last delivery moves the shard
// to the dead-letter stream and records the failure.
func (w *Worker) settleFailed(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, task queue.ShardTask, cause error, log *slog.Logger) {
	maxDeliver := w.cfg.Queue.Config().MaxDeliver
	state := jobstate.ShardState{
		State: jobstate.StateRetrying, Images: task.Images, Reason: redact.Error(cause),
		Deliveries: int(meta.NumDelivered), Worker: w.cfg.Name,
	}
	if int(meta.NumDelivered) < maxDeliver {
		delay := redeliveryDelay(w.cfg.RetryDelay, meta.NumDelivered)
		log.Warn("shard failed; retrying later", "err", cause, "delay", delay, "max_deliver", maxDeliver)
		_ = w.cfg.Jobs.PutShard(ctx, task.Job, task.Shard, state)
		w.cfg.Metrics.Shards.WithLabelValues("retry").Inc()
		_ = msg.NakWithDelay(delay)
		return
	}
	state.State = jobstate.StateFailed
	dl := queue.DeadLetter{Job: task.Job, Shard: task.Shard, Reason: redact.Error(cause),
		Deliveries: int(meta.NumDelivered), Task: task, At: time.Now().UTC()}
	err := w.retry(ctx, "dead-letter shard "+task.Shard, func() error {
		if err := w.cfg.Queue.PublishDead(ctx, dl); err != nil {
			return err
		}
		return w.cfg.Jobs.PutShard(ctx, task.Job, task.Shard, state)
	})
	if err != nil {
		log.Error("cannot dead-letter the shard; leaving it to redelivery", "err", err)
		_ = msg.Nak()
		return
	}
	w.cfg.Metrics.Shards.WithLabelValues("dead").Inc()
	log.Error("shard failed on its last delivery; dead-lettered", "err", cause)
	_ = msg.TermWithReason("dead-lettered: " + cause.Error())
}

// settlePermanent ends a shard whose failure no retry can fix (a task the
// model cannot run, a job that is gone): it is dead-lettered at once, and
// the job is marked failed with the reason so that the coordinator stops
// waiting for it.
func (w *Worker) settlePermanent(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, task queue.ShardTask, cause error, log *slog.Logger) {
	reason := redact.Error(cause)
	dl := queue.DeadLetter{Job: task.Job, Shard: task.Shard, Reason: "permanent: " + reason,
		Deliveries: int(meta.NumDelivered), Task: task, At: time.Now().UTC()}
	state := jobstate.ShardState{State: jobstate.StateFailed, Images: task.Images, Reason: dl.Reason,
		Deliveries: int(meta.NumDelivered), Worker: w.cfg.Name}
	err := w.retry(ctx, "dead-letter shard "+task.Shard, func() error {
		if err := w.cfg.Queue.PublishDead(ctx, dl); err != nil {
			return err
		}
		if err := w.cfg.Jobs.PutShard(ctx, task.Job, task.Shard, state); err != nil {
			return err
		}
		_, err := w.cfg.Jobs.UpdateSpec(ctx, task.Job, func(s *jobstate.Spec) {
			if s.Failure == "" {
				s.Failure = reason
			}
		})
		if errors.Is(err, jobstate.ErrNoJob) {
			return nil
		}
		return err
	})
	if err != nil {
		log.Error("cannot dead-letter the shard; leaving it to redelivery", "err", err)
		_ = msg.Nak()
		return
	}
	w.cfg.Metrics.Shards.WithLabelValues("dead").Inc()
	log.Error("shard failed permanently; dead-lettered without retrying", "err", reason)
	_ = msg.TermWithReason("permanent: " + reason)
}

// beats stops a shard's heartbeat goroutine.
type beats struct {
	progress func(*shardRun)
	stop     func()
}

// heartbeat tells the server the shard is being worked on every third of
// the ack wait, and publishes the shard's image count for progress
// displays, until stopped.
func (w *Worker) heartbeat(ctx context.Context, msg jetstream.Msg, task queue.ShardTask, log *slog.Logger) beats {
	ctx, cancel := context.WithCancel(ctx)
	runs := make(chan *shardRun, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ackTick := time.NewTicker(max(w.cfg.Queue.Config().AckWait/3, 100*time.Millisecond))
		defer ackTick.Stop()
		progTick := time.NewTicker(w.cfg.ProgressInterval)
		defer progTick.Stop()
		var run *shardRun
		for {
			select {
			case <-ctx.Done():
				return
			case run = <-runs:
			case <-ackTick.C:
				if err := msg.InProgress(); err != nil {
					log.Debug("progress report failed", "err", err)
				}
			case <-progTick.C:
				if run != nil {
					w.publishProgress(task, run.completed())
				}
			}
		}
	}()
	return beats{
		progress: func(run *shardRun) { runs <- run },
		stop:     func() { cancel(); <-done },
	}
}

// publishProgress sends a best-effort progress note (core NATS, no reply).
func (w *Worker) publishProgress(task queue.ShardTask, images int) {
	data, err := json.Marshal(queue.Progress{Shard: task.Shard, Images: images})
	if err == nil {
		_ = w.cfg.JS.Conn().Publish(w.cfg.Queue.ProgressSubject(task.Job), data)
	}
}

// process runs one shard: reads its spec and keys, pushes its images
// through the stages, and writes its Parquet file.
func (w *Worker) process(ctx context.Context, task queue.ShardTask, delivery int, started func(*shardRun)) (jobstate.ShardState, error) {
	spec, err := w.spec(ctx, task.Job)
	if err != nil {
		return jobstate.ShardState{}, fmt.Errorf("job %s: %w", task.Job, err)
	}
	ptask, err := pipeline.ParseTask(spec.Task, spec.Prompt)
	if err != nil {
		return jobstate.ShardState{}, retry.Permanent(fmt.Errorf("job %s: %w", task.Job, err))
	}
	if err := pipeline.CheckTask(w.cfg.Model, ptask); err != nil {
		return jobstate.ShardState{}, retry.Permanent(fmt.Errorf("job %s: %w", task.Job, err))
	}
	ptask.PromptColumn, ptask.Generation = spec.PromptColumn, string(spec.Generation)
	output, err := w.store(ctx, spec.Output)
	if err != nil {
		return jobstate.ShardState{}, err
	}
	src, err := w.shardSource(ctx, spec, task, output)
	if err != nil {
		return jobstate.ShardState{}, err
	}
	keys := src.list.Keys

	run := newShardRun(ctx, ptask, src.input, keys)
	src.setRows(run)
	run.dedupScope = dedupScope(spec)
	run.sourceRoot, run.allowPrivate = spec.SourceRoot, spec.AllowPrivateAddresses
	defer run.cancel(nil)
	w.watchActive(ctx, run, task, delivery)
	defer w.clearActive(run)
	started(run)
	w.feed(run, src)
	select {
	case <-run.done:
	case <-ctx.Done():
		return jobstate.ShardState{}, errHandedBack
	case <-w.stopping:
		select {
		case <-run.done: // finished as the worker was told to stop: write it
		default:
			return jobstate.ShardState{}, errHandedBack
		}
	}
	if ctx.Err() != nil {
		return jobstate.ShardState{}, errHandedBack
	}
	if err := context.Cause(run.ctx); err != nil {
		return jobstate.ShardState{}, err
	}

	file := ShardFile(task.Job, task.Shard)
	data, errorRows, err := w.encode(spec, task, ptask, run.rows)
	if err != nil {
		return jobstate.ShardState{}, err
	}
	start := time.Now()
	err = w.retryStore(ctx, output, "write "+file, func() error { return output.Write(ctx, file, data) })
	w.cfg.Metrics.StageSeconds.WithLabelValues(metrics.StageWrite).Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return jobstate.ShardState{}, errHandedBack
		}
		return jobstate.ShardState{}, fmt.Errorf("write %s: %w", file, err)
	}
	w.cfg.Metrics.Images.WithLabelValues("ok").Add(float64(len(run.rows) - errorRows))
	w.cfg.Metrics.Images.WithLabelValues("error").Add(float64(errorRows))
	return jobstate.ShardState{
		State: jobstate.StateDone, Rows: len(run.rows), ErrorRows: errorRows, Images: len(keys),
		Duplicates: countDuplicates(run.rows), File: file, Model: w.cfg.Model.ID(), Worker: w.cfg.Name,
	}, nil
}

// ShardFile is the output key of a shard's Parquet file.
func ShardFile(job, shard string) string { return job + "/shards/" + shard + ".parquet" }

// isNotExist reports a missing object (a permanent read failure).
func isNotExist(err error) bool { return errors.Is(err, storage.ErrNotExist) }
