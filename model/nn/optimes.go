package nn

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// OpTimes adds up the wall time the CPU ops spend, by kind of op ("linear",
// "attention", "gelu", ...: an op's name up to its first parenthesis or
// digit). Set CPU.Times to collect; `worker bench --op-times` prints them
// per stage. It is safe for concurrent use.
type OpTimes struct {
	mu     sync.Mutex
	byKind map[string]time.Duration
}

// OpTime is the time spent in one kind of op.
type OpTime struct {
	Kind string
	Time time.Duration
}

// NewOpTimes returns an empty collector.
func NewOpTimes() *OpTimes { return &OpTimes{byKind: map[string]time.Duration{}} }

// add records d for the op named name.
func (t *OpTimes) add(name string, d time.Duration) {
	if i := strings.IndexAny(name, "(0123456789["); i > 0 {
		name = name[:i]
	}
	t.mu.Lock()
	t.byKind[name] += d
	t.mu.Unlock()
}

// Take returns the times collected since the last Take, longest first, and
// starts again from zero.
func (t *OpTimes) Take() []OpTime {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]OpTime, 0, len(t.byKind))
	for k, d := range t.byKind {
		out = append(out, OpTime{Kind: k, Time: d})
	}
	clear(t.byKind)
	slices.SortFunc(out, func(a, b OpTime) int {
		if a.Time != b.Time {
			return int(b.Time - a.Time)
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return out
}
