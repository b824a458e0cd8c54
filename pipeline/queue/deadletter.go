package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter records a shard that failed every delivery.
type DeadLetter struct {
	Job        string    `json:"job"`
	Shard      string    `json:"shard"`
	Reason     string    `json:"reason"`
	Deliveries int       `json:"deliveries"`
	Task       ShardTask `json:"task"`
	At         time.Time `json:"at"`
}

// PublishDead adds dl to the dead-letter stream (once per job and shard
// within the duplicate window).
func (q *Queue) PublishDead(ctx context.Context, dl DeadLetter) error {
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter for shard %s: %w", dl.Shard, err)
	}
	_, err = q.js.Publish(ctx, q.cfg.DeadSubject+"."+dl.Job, data, jetstream.WithMsgID("dead/"+MsgID(dl.Job, dl.Shard)))
	if err != nil {
		return fmt.Errorf("publish dead letter for shard %s of job %s: %w", dl.Shard, dl.Job, err)
	}
	return nil
}

// DeadLetters returns the dead letters of job, oldest first.
func (q *Queue) DeadLetters(ctx context.Context, job string) ([]DeadLetter, error) {
	subject := q.cfg.DeadSubject + "." + job
	stream, err := q.js.Stream(ctx, q.cfg.DeadStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", q.cfg.DeadStream, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", q.cfg.DeadStream, err)
	}
	count := int(info.State.Subjects[subject])
	if count == 0 {
		return nil, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", subject, err)
	}
	letters := make([]DeadLetter, 0, count)
	for len(letters) < count {
		batch, err := cons.Fetch(count-len(letters), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", subject, err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			var dl DeadLetter
			if err := json.Unmarshal(msg.Data(), &dl); err != nil {
				return nil, fmt.Errorf("decode dead letter on %s: %w", subject, err)
			}
			letters = append(letters, dl)
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read %s: %w", subject, err)
		}
		if got == 0 {
			return nil, fmt.Errorf("read %s: %d of %d dead letters arrived", subject, len(letters), count)
		}
	}
	return letters, nil
}

// maxDeliveriesAdvisory is the part of JetStream's
// io.nats.jetstream.advisory.v1.max_deliver advisory the queue reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries int    `json:"deliveries"`
}

// advisoryConsumer is the durable consumer of the advisory stream.
const advisoryConsumer = "blipflow-deadletter"

// DeadLetterExhausted dead-letters the shards whose deliveries ran out
// without a worker dead-lettering them itself (a worker killed during the
// last delivery): for each max-deliveries advisory it moves the shard
// message to the dead-letter stream and calls onDead (to record the failure
// in the job state). It runs until ctx ends. Several processes may run it;
// each advisory is handled once. explain, if not nil, may add to the
// reason what is known of the deliveries (the images a dying worker was
// on).
func (q *Queue) DeadLetterExhausted(ctx context.Context, explain func(context.Context, DeadLetter) string, onDead func(context.Context, DeadLetter) error) error {
	cons, err := q.js.CreateOrUpdateConsumer(ctx, q.cfg.AdvisoryStream, jetstream.ConsumerConfig{
		Durable:   advisoryConsumer,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", advisoryConsumer, q.cfg.AdvisoryStream, err)
	}
	shards, err := q.js.Stream(ctx, q.cfg.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", q.cfg.Stream, err)
	}
	for ctx.Err() == nil {
		fetchCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := cons.Next(jetstream.FetchContext(fetchCtx))
		cancel()
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, jetstream.ErrNoMessages), errors.Is(err, nats.ErrTimeout):
		case err != nil:
			return fmt.Errorf("read %s: %w", q.cfg.AdvisoryStream, err)
		case q.handleAdvisory(ctx, shards, msg.Data(), explain, onDead) != nil:
			_ = msg.NakWithDelay(time.Second)
		default:
			_ = msg.Ack()
		}
	}
	return nil
}

// handleAdvisory dead-letters the shard one advisory names.
func (q *Queue) handleAdvisory(ctx context.Context, shards jetstream.Stream, data []byte, explain func(context.Context, DeadLetter) string, onDead func(context.Context, DeadLetter) error) error {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(data, &adv); err != nil || adv.StreamSeq == 0 {
		return nil // not an advisory we can act on; drop it
	}
	raw, err := shards.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // acknowledged or dead-lettered meanwhile
	}
	if err != nil {
		return fmt.Errorf("get shard message %d: %w", adv.StreamSeq, err)
	}
	task, err := DecodeShardTask(raw.Data)
	if err != nil {
		return shards.DeleteMsg(ctx, adv.StreamSeq)
	}
	dl := DeadLetter{
		Job:        task.Job,
		Shard:      task.Shard,
		Reason:     fmt.Sprintf("no worker acknowledged the shard in %d deliveries", adv.Deliveries),
		Deliveries: adv.Deliveries,
		Task:       task,
		At:         time.Now().UTC(),
	}
	if explain != nil {
		if more := explain(ctx, dl); more != "" {
			dl.Reason += "; " + more
		}
	}
	if err := q.PublishDead(ctx, dl); err != nil {
		return err
	}
	if onDead != nil {
		if err := onDead(ctx, dl); err != nil {
			return err
		}
	}
	if err := shards.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete dead shard message %d: %w", adv.StreamSeq, err)
	}
	return nil
}
