package worker

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"blipflow/pipeline"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/synth"
	"blipflow/storage"
)

// cutStore serves streamed reads cut to half the object, as a dropped
// connection would, while Stat reports the whole object.
type cutStore struct{ storage.Store }

func (s cutStore) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	data, err := s.Read(ctx, key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data[:len(data)/2])), nil
}

// TestCutTarReadIsRetriedNotTruncated checks that a tar whose read stops
// early, while the object is whole, fails the shard (to be retried)
// instead of giving truncation error rows, and that the same tar read in
// full gives every sample a caption.
func TestCutTarReadIsRetriedNotTruncated(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, queue.Config{MaxDeliver: 1}, 0)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range 6 {
		data, err := synth.PNG(i, 16, 16)
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: "s/" + string(rune('a'+i)) + ".png", Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.in.Write(ctx, "tars/0.tar", buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	location := filepath.Join(f.in.URL(), "tars", "0.tar")
	for _, c := range []struct {
		job string
		cut bool
	}{{"cut", true}, {"whole", false}} {
		if _, err := f.conn.Jobs.CreateSpec(ctx, jobstate.Spec{ID: c.job, Input: location, Output: f.output, Task: pipeline.TaskCaption, Published: true, Shards: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.conn.Queue.Publish(ctx, queue.ShardTask{Job: c.job, Shard: "t0", Archive: location}); err != nil {
			t.Fatal(err)
		}
		w := f.worker(t, &pipeline.NopModel{}, Config{})
		if c.cut {
			open := w.cfg.OpenStore
			w.cfg.OpenStore = func(ctx context.Context, loc string) (storage.Store, error) {
				s, err := open(ctx, loc)
				return cutStore{s}, err
			}
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = w.Run(runCtx); close(done) }()
		states := f.waitStates(t, c.job, func(s map[string]jobstate.ShardState) bool {
			st := s["t0"].State
			return st == jobstate.StateDone || st == jobstate.StateFailed
		})
		stop()
		<-done
		st := states["t0"]
		switch {
		case c.cut && (st.State != jobstate.StateFailed || !strings.Contains(st.Reason, "read ended after")):
			t.Errorf("cut read: state %+v, want failed naming the short read", st)
		case !c.cut && (st.State != jobstate.StateDone || st.Rows != 6 || st.ErrorRows != 0 || st.Images != 6):
			t.Errorf("whole read: state %+v, want 6 rows without errors", st)
		}
	}
}
