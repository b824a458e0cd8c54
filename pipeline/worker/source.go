package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
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
	// archive, for a tar shard, streams the tar.
	archive *archive
	// images are the tar's image members, by row ("" for samples without
	// one); memberErrs say why a member cannot be read ("" when it can).
	images     []string
	memberErrs []string
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
			switch {
			case member == "":
				r.Err = "read: " + sharding.ErrNoImageMember.Error()
				member = r.Key
			case s.memberErrs[i] != "":
				r.Err = "read: " + s.memberErrs[i]
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
	err := src.archive.samples(run.ctx, sharding.TarOptions{SkipExtras: true}, func(s sharding.Sample) error {
		if next >= len(rows) || rows[next].Key != s.Key || (s.ImageMember == "") != (src.images[next] == "") {
			return fmt.Errorf("tar %s changed while it was read (sample %q)", src.archive.location, s.Key)
		}
		idx := next
		next++
		if s.Err != "" && src.memberErrs[idx] == "" {
			return fmt.Errorf("tar %s: %s on the second read only (the tar changed, or the read was cut)", src.archive.location, s.Err)
		}
		if s.ImageMember == "" || src.memberErrs[idx] != "" || rows[idx].Err != "" {
			run.finish() // its row holds the error
			return nil
		}
		if !send(run.ctx, w.readCh, &item{run: run, idx: idx, data: s.Image, loaded: true}) {
			run.finish()
			return run.ctx.Err()
		}
		return nil
	})
	if err == nil && next < len(rows) {
		err = fmt.Errorf("tar %s ended after %d of its %d samples on the second read (the tar changed, or the read was cut)", src.archive.location, next, len(rows))
	}
	if err != nil && run.ctx.Err() == nil {
		run.fail(err)
	}
	for ; next < len(rows); next++ {
		run.finish()
	}
}

// archiveSource lists the samples of the shard's tar: a first pass over
// the stream that reads member headers and drops the image bytes. The
// second pass (feed) streams the images to the readers. Neither holds more
// than one member of the tar in memory; a truncated tar keeps the samples
// before the cut, and the member cut short becomes an error row.
func (w *Worker) archiveSource(ctx context.Context, task queue.ShardTask) (*shardSource, error) {
	a, err := w.openArchive(ctx, task.Archive)
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", task.Shard, err)
	}
	src := &shardSource{archive: a}
	err = a.samples(ctx, sharding.TarOptions{SkipImages: true}, func(s sharding.Sample) error {
		src.list.Keys = append(src.list.Keys, s.Key)
		src.list.Extras = append(src.list.Extras, s.Extra)
		src.images = append(src.images, s.ImageMember)
		src.memberErrs = append(src.memberErrs, s.Err)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", task.Shard, err)
	}
	return src, nil
}

// archive is a WebDataset tar in a store, streamed on each pass (one
// sequential GET from S3, a file read from disk).
type archive struct {
	location string
	store    storage.Store
	key      string
	size     int64 // bytes, from the store's listing
	log      func(msg string, args ...any)
}

// openArchive locates a tar and checks that it exists.
func (w *Worker) openArchive(ctx context.Context, location string) (*archive, error) {
	root, key, err := sharding.SplitLocation(location)
	if err != nil {
		return nil, err
	}
	store, err := w.store(ctx, root)
	if err != nil {
		return nil, err
	}
	var obj storage.Object
	err = w.retryStore(ctx, store, "stat "+location, func() error {
		var err error
		obj, err = store.Stat(ctx, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tar %s: %w", location, err)
	}
	return &archive{location: location, store: store, key: key, size: obj.Size, log: w.cfg.Log.Warn}, nil
}

// samples streams the tar's samples to fn. A truncated tar is not an
// error: its complete samples were delivered and a member cut short
// carries the reason in Sample.Err.
func (a *archive) samples(ctx context.Context, opts sharding.TarOptions, fn func(sharding.Sample) error) error {
	body, err := storage.OpenStream(ctx, a.store, a.key)
	if err != nil {
		return fmt.Errorf("tar %s: %w", a.location, err)
	}
	defer body.Close()
	counted := &countingReader{r: body}
	err = sharding.ReadWebDataset(counted, opts, fn)
	if errors.Is(err, sharding.ErrTruncated) {
		if counted.n < a.size {
			// The object is whole; the read was cut (a dropped
			// connection): a transient failure, not a truncated tar.
			return fmt.Errorf("tar %s: read ended after %d of its %d bytes: %w", a.location, counted.n, a.size, io.ErrUnexpectedEOF)
		}
		if !opts.SkipImages {
			a.log("tar is truncated; its complete samples are kept", "tar", a.location, "err", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", a.location, err)
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
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
		if !inTar {
			return w.readStore(ctx, store, key)
		}
		return w.readTarMember(ctx, store, key, member)
	default:
		return w.readStore(ctx, it.run.input, r.Key)
	}
}

// readTarMember streams a tar up to one of its members and returns it;
// a member that cannot be read is a rowError.
func (w *Worker) readTarMember(ctx context.Context, store storage.Store, key, member string) ([]byte, error) {
	var image []byte
	var rowErr error
	err := w.retryStore(ctx, store, "read "+key, func() error {
		body, err := storage.OpenStream(ctx, store, key)
		if err != nil {
			return err
		}
		defer body.Close()
		if image, err = sharding.TarMember(body, member); err != nil {
			rowErr = rowError("read: " + err.Error())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return image, rowErr
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
