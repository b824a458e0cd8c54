package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"blipflow/pipeline/fetch"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
	"blipflow/sharding"
	"blipflow/storage"
)

// shardSource is what a shard's images are and where they come from: a
// list of keys (read under the job's input, from their own locations or
// by URL) or the samples of a WebDataset tar.
type shardSource struct {
	list queue.ShardList
	// input is the job's input store, opened only when a key is read
	// under it.
	input storage.Store
	// archive, for a tar shard, gives the tar's bytes.
	archive *archive
	// images are the tar's image members, by row ("" for samples without
	// one).
	images []string
}

// rowError is a read failure that belongs in the image's row (a failed
// download, a tar sample without an image) rather than failing the shard.
type rowError string

func (e rowError) Error() string { return string(e) }

// shardSource gathers the shard's keys and how to read them.
func (w *Worker) shardSource(ctx context.Context, spec jobstate.Spec, task queue.ShardTask, output storage.Store) (*shardSource, error) {
	if task.Archive != "" {
		return w.archiveSource(ctx, task)
	}
	list, err := w.shardList(ctx, task, output)
	if err != nil {
		return nil, err
	}
	src := &shardSource{list: list}
	if list.Sources == nil || len(list.Keys) == 0 || containsEmpty(list.Sources) {
		if src.input, err = w.store(ctx, spec.Input); err != nil {
			return nil, err
		}
	}
	return src, nil
}

func containsEmpty(values []string) bool {
	for _, v := range values {
		if v == "" {
			return true
		}
	}
	return false
}

// shardList returns the shard's keys with their sources and extra
// columns, from the message or from the list object it points to (a JSON
// array of keys, or a queue.ShardList).
func (w *Worker) shardList(ctx context.Context, task queue.ShardTask, output storage.Store) (queue.ShardList, error) {
	if task.KeysRef == "" {
		return queue.ShardList{Keys: task.Keys, Sources: task.Sources, Extras: task.Extras}, nil
	}
	var data []byte
	err := w.retryStore(ctx, output, "read "+task.KeysRef, func() error {
		var err error
		data, err = output.Read(ctx, task.KeysRef)
		return err
	})
	if err != nil {
		return queue.ShardList{}, fmt.Errorf("shard %s key list: %w", task.Shard, err)
	}
	list, err := queue.DecodeShardList(data)
	if err != nil {
		return queue.ShardList{}, fmt.Errorf("shard %s key list %s: %w", task.Shard, task.KeysRef, err)
	}
	return list, nil
}

// setRows fills the rows' sources and carried-through columns, and the
// errors of tar samples without an image.
func (s *shardSource) setRows(run *shardRun) {
	for i := range run.rows {
		r := &run.rows[i]
		if s.list.Sources != nil {
			r.Source = s.list.Sources[i]
		}
		if s.list.Extras != nil {
			r.Extra = s.list.Extras[i]
		}
		if s.archive != nil {
			member := s.images[i]
			if member == "" {
				r.Err = "read: " + sharding.ErrNoImageMember.Error()
				member = r.Key
			}
			r.Source = s.archive.location + "#" + member
		}
	}
}

// feed passes the shard's images to the readers: keys to read, or the
// image bytes of the tar's samples, streamed from the tar.
func (w *Worker) feed(run *shardRun, src *shardSource) {
	if src.archive == nil {
		for i := range run.rows {
			if run.rows[i].Err != "" { // settled before reading (a killer image)
				run.finish()
				continue
			}
			if !send(run.ctx, w.readCh, &item{run: run, idx: i}) {
				run.finish()
			}
		}
		return
	}
	rows := run.rows
	next := 0
	err := src.archive.samples(sharding.TarOptions{SkipExtras: true}, func(s sharding.Sample) error {
		if next >= len(rows) || rows[next].Key != s.Key || (s.ImageMember == "") != (src.images[next] == "") {
			return fmt.Errorf("tar %s changed while it was read (sample %q)", src.archive.location, s.Key)
		}
		idx := next
		next++
		if s.ImageMember == "" || rows[idx].Err != "" {
			run.finish() // its row holds the error
			return nil
		}
		if !send(run.ctx, w.readCh, &item{run: run, idx: idx, data: s.Image, loaded: true}) {
			run.finish()
			return run.ctx.Err()
		}
		return nil
	})
	if err != nil && run.ctx.Err() == nil {
		run.fail(err)
	}
	for ; next < len(rows); next++ {
		run.finish()
	}
}

// archiveSource lists the samples of the shard's tar.
func (w *Worker) archiveSource(ctx context.Context, task queue.ShardTask) (*shardSource, error) {
	a, err := w.openArchive(ctx, task.Archive)
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", task.Shard, err)
	}
	src := &shardSource{archive: a}
	err = a.samples(sharding.TarOptions{SkipImages: true}, func(s sharding.Sample) error {
		src.list.Keys = append(src.list.Keys, s.Key)
		src.list.Extras = append(src.list.Extras, s.Extra)
		src.images = append(src.images, s.ImageMember)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", task.Shard, err)
	}
	return src, nil
}

// archive is a WebDataset tar that can be read more than once: a local
// file is streamed from disk each time, another object is read once.
type archive struct {
	location string
	path     string // local file, or ""
	data     []byte
}

// openArchive locates a tar, reading it whole unless it is a local file.
func (w *Worker) openArchive(ctx context.Context, location string) (*archive, error) {
	root, key, err := sharding.SplitLocation(location)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(root, "s3://") {
		path := filepath.Join(root, filepath.FromSlash(key))
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("tar %s: %w", location, err)
		}
		return &archive{location: location, path: path}, nil
	}
	store, err := w.store(ctx, root)
	if err != nil {
		return nil, err
	}
	data, err := w.readStore(ctx, store, key)
	if err != nil {
		return nil, fmt.Errorf("tar %s: %w", location, err)
	}
	return &archive{location: location, data: data}, nil
}

// samples streams the tar's samples to fn.
func (a *archive) samples(opts sharding.TarOptions, fn func(sharding.Sample) error) error {
	var r io.Reader = bytes.NewReader(a.data)
	if a.path != "" {
		f, err := os.Open(a.path)
		if err != nil {
			return fmt.Errorf("tar %s: %w", a.location, err)
		}
		defer f.Close()
		r = f
	}
	if err := sharding.ReadWebDataset(r, opts, fn); err != nil {
		return fmt.Errorf("%s: %w", a.location, err)
	}
	return nil
}

// readImage returns an item's bytes: those it came with (a tar sample),
// a download of its URL, or a read of its location or of its key under
// the job's input. A failed download is a rowError.
func (w *Worker) readImage(it *item) ([]byte, error) {
	r, ctx := it.row(), it.run.ctx
	switch {
	case it.loaded:
		return it.data, nil
	case sharding.IsURL(r.Source):
		fetcher := w.fetcher
		if it.run.allowPrivate {
			fetcher = w.openFetcher
		}
		data, err := fetcher.Fetch(ctx, r.Source)
		if ferr, ok := errors.AsType[*fetch.Error](err); ok {
			return nil, rowError("fetch: " + ferr.Reason)
		}
		return data, err
	case r.Source != "":
		// A "tar#member" source (a WebDataset sample being retried) reads
		// the tar, then the member.
		location, member, inTar := strings.Cut(r.Source, "#")
		root, key, err := sharding.SplitLocation(location)
		if err != nil {
			return nil, rowError("read: " + err.Error())
		}
		if limit := it.run.sourceRoot; limit != "" && !sharding.Within(limit, location) {
			return nil, rowError(fmt.Sprintf("read: %s is outside the manifest's folder %s (--allow-local-paths allows it)", location, limit))
		}
		store, err := w.store(ctx, root)
		if err != nil {
			return nil, err
		}
		data, err := w.readStore(ctx, store, key)
		if err != nil || !inTar {
			return data, err
		}
		image, err := sharding.TarMember(data, member)
		if err != nil {
			return nil, rowError("read: " + err.Error())
		}
		return image, nil
	default:
		return w.readStore(ctx, it.run.input, r.Key)
	}
}

// readStore reads key with retries.
func (w *Worker) readStore(ctx context.Context, store storage.Store, key string) ([]byte, error) {
	var data []byte
	err := w.retryStore(ctx, store, "read "+key, func() error {
		var err error
		data, err = store.Read(ctx, key)
		return err
	})
	return data, err
}

// rowSource names where a row's image came from in full.
func rowSource(input string, r row) string {
	if r.Source != "" {
		return r.Source
	}
	return sourceURL(input, r.Key)
}

// mergeExtra returns the carried-through columns with the worker's own
// (dedup) entries on top, without changing either map.
func mergeExtra(carried, own map[string]string) map[string]string {
	if len(own) == 0 {
		return carried
	}
	if len(carried) == 0 {
		return own
	}
	merged := maps.Clone(carried)
	maps.Copy(merged, own)
	return merged
}
