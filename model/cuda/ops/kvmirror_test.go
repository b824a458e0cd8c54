package ops

import (
	"testing"
	"unsafe"
)

func TestSyncPlan(t *testing.T) {
	a, b := unsafe.Pointer(new(float32)), unsafe.Pointer(new(float32))
	m := &mirror{steps: 10, batch: 4, host: a, room: 16}
	for _, tc := range []struct {
		name           string
		m              *mirror
		before         unsafe.Pointer
		batch, old, nw int
		from           int
		grow           bool
	}{
		{"first append", nil, nil, 4, 0, 33, 0, true},
		{"next step: only it goes up", m, a, 4, 10, 11, 10, false},
		{"past the device room", m, a, 4, 10, 17, 0, true},
		{"rows selected (new storage)", m, b, 4, 10, 11, 0, false},
		{"rows dropped", m, a, 3, 10, 11, 0, true},
		{"steps trimmed", m, a, 4, 7, 8, 0, false},
	} {
		from, grow := syncPlan(tc.m, tc.before, tc.batch, tc.old, tc.nw)
		if from != tc.from || grow != tc.grow {
			t.Errorf("%s: from %d grow %v, want %d %v", tc.name, from, grow, tc.from, tc.grow)
		}
	}
}
