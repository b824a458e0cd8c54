package sharding

import (
	"errors"
	"fmt"
)

// Sorted is implemented by inputs whose List gives items in ascending key
// order (object stores list that way): they can be cut into shards while
// they are listed (see Cutter).
type Sorted interface {
	Input
	SortedByKey()
}

// SortedByKey implements Sorted: a store lists in lexical key order.
func (StoreInput) SortedByKey() {}

// ErrUnsorted reports a listing that was not in ascending key order.
var ErrUnsorted = errors.New("listing is not in ascending key order")

// Cutter cuts items that arrive in ascending key order into the shards
// Plan makes of the same items, handing each to emit as soon as it is
// full: planning holds one shard of items at a time, whatever the size of
// the input. Repeated keys are dropped as Plan drops them.
type Cutter struct {
	size   int
	emit   func(Shard) error
	chunk  []Item
	shards int
	images int
	last   string
	any    bool
}

// NewCutter returns a Cutter of shards of at most size items.
func NewCutter(size int, emit func(Shard) error) (*Cutter, error) {
	if size <= 0 {
		return nil, fmt.Errorf("shard size %d: want at least 1", size)
	}
	return &Cutter{size: size, emit: emit, chunk: make([]Item, 0, size)}, nil
}

// Add takes the next item; it must not sort before the previous one.
func (c *Cutter) Add(item Item) error {
	if c.any {
		switch {
		case item.Key == c.last:
			return nil
		case item.Key < c.last:
			return fmt.Errorf("%w: %q after %q", ErrUnsorted, item.Key, c.last)
		}
	}
	c.any, c.last = true, item.Key
	c.chunk = append(c.chunk, item)
	c.images++
	if len(c.chunk) == c.size {
		return c.flush()
	}
	return nil
}

// Close emits the last, partial shard.
func (c *Cutter) Close() error {
	if len(c.chunk) == 0 {
		return nil
	}
	return c.flush()
}

func (c *Cutter) flush() error {
	shard := makeShard(c.shards, c.chunk)
	c.shards++
	c.chunk = c.chunk[:0]
	return c.emit(shard)
}

// Shards and Images count what the Cutter emitted or holds.
func (c *Cutter) Shards() int { return c.shards + min(len(c.chunk), 1) }

// Images counts the distinct items added.
func (c *Cutter) Images() int { return c.images }
