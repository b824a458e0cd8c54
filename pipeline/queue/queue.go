// Package queue is the pipeline's JetStream wiring: the work-queue stream of
// shard messages (de-duplicated by job and shard id), the durable pull
// consumer workers share, the dead-letter stream, and the stream that keeps
// JetStream's max-deliveries advisories until someone dead-letters them.
package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config names the streams and consumer and sets the delivery policy.
// Coordinator and workers must agree on it; zero fields take the defaults.
type Config struct {
	// Stream is the work-queue stream of shard messages (BLIPFLOW_SHARDS).
	Stream string
	// Subject prefixes shard subjects: <Subject>.<job> (blipflow.shards).
	Subject string
	// DeadStream keeps dead-lettered shards (BLIPFLOW_DEAD).
	DeadStream string
	// DeadSubject prefixes dead-letter subjects: <DeadSubject>.<job>.
	DeadSubject string
	// AdvisoryStream captures max-deliveries advisories of Consumer
	// (BLIPFLOW_ADVISORIES).
	AdvisoryStream string
	// ProgressSubject prefixes the core NATS subjects workers report shard
	// progress on: <ProgressSubject>.<job> (blipflow.progress).
	ProgressSubject string
	// Consumer is the durable pull consumer the workers share
	// (blipflow-workers).
	Consumer string
	// AckWait is how long a delivered shard may go without an ack or a
	// progress report before it is redelivered (30s).
	AckWait time.Duration
	// MaxDeliver bounds the deliveries of a shard before it is dead-lettered
	// (5).
	MaxDeliver int
	// MaxAckPending bounds the shards in flight across all workers (1000).
	MaxAckPending int
	// DuplicateWindow is how long the stream remembers message ids to
	// drop re-published shards (24h).
	DuplicateWindow time.Duration
	// Replicas is the streams' replication factor: the number of
	// JetStream cluster nodes holding each (at most 5). Zero keeps the
	// replicas of streams that exist and creates new ones with 1, so a
	// process started without the setting never shrinks a replicated
	// stream.
	Replicas int
}

// Defaults of Config's zero fields.
const (
	DefaultStream          = "BLIPFLOW_SHARDS"
	DefaultSubject         = "blipflow.shards"
	DefaultDeadStream      = "BLIPFLOW_DEAD"
	DefaultDeadSubject     = "blipflow.dead"
	DefaultAdvisoryStream  = "BLIPFLOW_ADVISORIES"
	DefaultProgressSubject = "blipflow.progress"
	DefaultConsumer        = "blipflow-workers"
	DefaultAckWait         = 30 * time.Second
	DefaultMaxDeliver      = 5
	DefaultMaxAckPending   = 1000
	DefaultDuplicateWindow = 24 * time.Hour
)

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	setDefault(&c.Stream, DefaultStream)
	setDefault(&c.Subject, DefaultSubject)
	setDefault(&c.DeadStream, DefaultDeadStream)
	setDefault(&c.DeadSubject, DefaultDeadSubject)
	setDefault(&c.AdvisoryStream, DefaultAdvisoryStream)
	setDefault(&c.ProgressSubject, DefaultProgressSubject)
	setDefault(&c.Consumer, DefaultConsumer)
	setDefault(&c.AckWait, DefaultAckWait)
	setDefault(&c.MaxDeliver, DefaultMaxDeliver)
	setDefault(&c.MaxAckPending, DefaultMaxAckPending)
	setDefault(&c.DuplicateWindow, DefaultDuplicateWindow)
	return c
}

func setDefault[T comparable](field *T, value T) {
	var zero T
	if *field == zero {
		*field = value
	}
}

// BackOff returns the consumer's redelivery schedule: AckWait for the first
// delivery, then doubling, capped at 8*AckWait, one entry per delivery.
func (c Config) BackOff() []time.Duration {
	c = c.withDefaults()
	backoff := make([]time.Duration, c.MaxDeliver)
	wait := c.AckWait
	for i := range backoff {
		backoff[i] = wait
		wait = min(2*wait, 8*c.AckWait)
	}
	return backoff
}

// advisorySubject is the subject JetStream publishes max-deliveries
// advisories of the workers' consumer on.
func (c Config) advisorySubject() string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + c.Stream + "." + c.Consumer
}

// Queue is the set-up streams and consumer.
type Queue struct {
	js  jetstream.JetStream
	cfg Config
}

// Setup creates or updates the streams (idempotent; coordinator and workers
// both call it) and returns the Queue.
func Setup(ctx context.Context, js jetstream.JetStream, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	streams := []jetstream.StreamConfig{{
		Name:        cfg.Stream,
		Description: "blipflow shards waiting for a worker",
		Subjects:    []string{cfg.Subject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  cfg.DuplicateWindow,
		Replicas:    cfg.Replicas,
	}, {
		Name:        cfg.DeadStream,
		Description: "blipflow shards that failed every delivery",
		Subjects:    []string{cfg.DeadSubject + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  cfg.DuplicateWindow,
		Replicas:    cfg.Replicas,
	}, {
		Name:        cfg.AdvisoryStream,
		Description: "max-deliveries advisories of blipflow shards, until dead-lettered",
		Subjects:    []string{cfg.advisorySubject()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}}
	for _, sc := range streams {
		if sc.Replicas == 0 {
			sc.Replicas = 1
			if stream, err := js.Stream(ctx, sc.Name); err == nil {
				sc.Replicas = max(stream.CachedInfo().Config.Replicas, 1)
			} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
				return nil, fmt.Errorf("stream %s: %w", sc.Name, err)
			}
		}
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("stream %s (%d replicas): %w", sc.Name, sc.Replicas, err)
		}
	}
	return &Queue{js: js, cfg: cfg}, nil
}

// Config returns the queue's configuration with defaults filled in.
func (q *Queue) Config() Config { return q.cfg }

// ShardSubject is the subject shards of job are published on.
func (q *Queue) ShardSubject(job string) string { return q.cfg.Subject + "." + job }

// ProgressSubject is the subject progress notes of job's shards go to.
func (q *Queue) ProgressSubject(job string) string { return q.cfg.ProgressSubject + "." + job }

// MsgID is the de-duplication id of a shard message.
func MsgID(job, shard string) string { return job + "/" + shard }

// Publish sends a shard message. duplicate reports that the stream already
// had it (same job and shard within the duplicate window).
func (q *Queue) Publish(ctx context.Context, task ShardTask) (duplicate bool, err error) {
	data, err := task.Encode()
	if err != nil {
		return false, err
	}
	subject, id := q.ShardSubject(task.Job), MsgID(task.Job, task.Shard)
	// A stream leader election (a lost cluster node) makes publishes fail
	// for a few seconds; the message id makes a retry safe, since the
	// stream drops a copy that did get through.
	delay := 100 * time.Millisecond
	deadline := time.Now().Add(publishPatience)
	for {
		attempt, cancel := context.WithTimeout(ctx, publishAttemptTimeout)
		ack, err := q.js.Publish(attempt, subject, data, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return ack.Duplicate, nil
		}
		if ctx.Err() != nil || !transientPublishError(err) || time.Now().Add(delay).After(deadline) {
			return false, fmt.Errorf("publish shard %s of job %s: %w", task.Shard, task.Job, err)
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("publish shard %s of job %s: %w", task.Shard, task.Job, ctx.Err())
		case <-time.After(delay/2 + rand.N(delay)):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// publishPatience bounds the retries of one publish, and
// publishAttemptTimeout each attempt (a publish sent to a server that has
// just died is never acknowledged).
const (
	publishPatience       = 60 * time.Second
	publishAttemptTimeout = 5 * time.Second
)

// transientPublishError reports publish failures that a leader election or
// a reconnect explain: no stream answered in time, or none was reachable.
func transientPublishError(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// Consumer creates or updates the workers' durable pull consumer and
// returns it.
func (q *Queue) Consumer(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := q.js.CreateOrUpdateConsumer(ctx, q.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       q.cfg.Consumer,
		Description:   "blipflow workers",
		FilterSubject: q.cfg.Subject + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		BackOff:       q.cfg.BackOff(),
		MaxDeliver:    q.cfg.MaxDeliver,
		MaxAckPending: q.cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", q.cfg.Consumer, q.cfg.Stream, err)
	}
	return cons, nil
}

// Backlog returns how many shards wait in the queue and how many are
// delivered but not yet acknowledged.
func (q *Queue) Backlog(ctx context.Context) (waiting, inFlight uint64, err error) {
	cons, err := q.js.Consumer(ctx, q.cfg.Stream, q.cfg.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		stream, serr := q.js.Stream(ctx, q.cfg.Stream)
		if serr != nil {
			return 0, 0, fmt.Errorf("stream %s: %w", q.cfg.Stream, serr)
		}
		info, serr := stream.Info(ctx)
		if serr != nil {
			return 0, 0, fmt.Errorf("stream %s: %w", q.cfg.Stream, serr)
		}
		return info.State.Msgs, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("consumer %s: %w", q.cfg.Consumer, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("consumer %s: %w", q.cfg.Consumer, err)
	}
	return info.NumPending, uint64(info.NumAckPending), nil
}
