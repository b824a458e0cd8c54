package main

import (
	"errors"
	"sync/atomic"

	"blipflow/pipeline/node"
)

// readiness backs /readyz: ready once connected to a NATS that is up.
type readiness struct {
	conn atomic.Pointer[node.Conn]
}

func (r *readiness) connected(c *node.Conn) { r.conn.Store(c) }

func (r *readiness) check() error {
	c := r.conn.Load()
	if c == nil {
		return errors.New("not connected to nats yet")
	}
	if !c.NC.IsConnected() {
		return errors.New("nats is disconnected")
	}
	return nil
}
