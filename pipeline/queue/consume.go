package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Pull settings of a Puller: each pull request waits up to pullExpiry on
// the server, which sends an idle heartbeat every pullHeartbeat; two missed
// heartbeats (a lost server, a consumer moved to another leader) make the
// Puller start over.
const (
	pullExpiry    = 30 * time.Second
	pullHeartbeat = 5 * time.Second
)

// Puller hands out the workers' shard messages one at a time from a
// JetStream Messages iterator over the durable consumer. Its buffer holds
// at most one message, and a new one is requested only when Next is
// called, so a worker asks for a shard only when it has room for one: no
// shard waits in a client buffer while its ack wait runs out. Not safe
// for concurrent use.
type Puller struct {
	q    *Queue
	cons jetstream.Consumer
	it   jetstream.MessagesContext
}

// Puller returns a Puller over the workers' consumer (created on first
// use).
func (q *Queue) Puller() *Puller { return &Puller{q: q} }

// Next blocks until a shard message arrives or ctx ends. Errors other
// than ctx's say the consumer or the server is unreachable, gone or
// changed leader; the next call starts over, recreating the consumer if
// it was deleted.
func (p *Puller) Next(ctx context.Context) (jetstream.Msg, error) {
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	msg, err := p.it.Next(jetstream.NextContext(ctx))
	if err == nil {
		return msg, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	p.it.Stop()
	p.it = nil
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrNoHeartbeat) {
		p.cons = nil
	}
	return nil, fmt.Errorf("pull from consumer %s: %w", p.q.cfg.Consumer, err)
}

// Start creates the consumer and the iterator unless the Puller has them
// (Next calls it; a worker calls it first to know the queue is reachable).
func (p *Puller) Start(ctx context.Context) error {
	if p.it != nil {
		return nil
	}
	if p.cons == nil {
		cons, err := p.q.Consumer(ctx)
		if err != nil {
			return err
		}
		p.cons = cons
	}
	it, err := p.cons.Messages(
		jetstream.PullMaxMessages(1),
		jetstream.PullExpiry(pullExpiry),
		jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.WithMessagesErrOnMissingHeartbeat(true),
	)
	if err != nil {
		p.cons = nil
		return fmt.Errorf("pull from consumer %s: %w", p.q.cfg.Consumer, err)
	}
	p.it = it
	return nil
}

// Active reports whether the Puller holds a live iterator.
func (p *Puller) Active() bool { return p.it != nil }

// Stop ends the iterator; messages it buffered but did not hand out are
// redelivered after the ack wait.
func (p *Puller) Stop() {
	if p.it != nil {
		p.it.Stop()
		p.it = nil
	}
}
