package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// downloadBlob fetches a file into blob through blob+".incomplete",
// continuing an earlier partial download with a Range request, retrying
// dropped connections, then checking size and (for LFS files) sha256.
func (f *fetcher) downloadBlob(ctx context.Context, fileURL, name string, meta fileMeta, blob string) error {
	fail := func(err error) error { return fmt.Errorf("model %s file %s: %w", f.ref, name, err) }
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fail(err)
	}
	incomplete := blob + ".incomplete"
	part, err := openPartialBlob(incomplete, meta.isLFS())
	if err != nil {
		return fail(err)
	}
	defer part.file.Close()
	if meta.size >= 0 && part.size > meta.size {
		if err := part.restart(); err != nil {
			return fail(err)
		}
	}
	progress := newFileProgress(f.settings.progress, name, meta.size, part.size)
	err = f.retry(ctx, func() error { return f.downloadRest(ctx, fileURL, name, meta, part, progress) })
	progress.finish(err == nil)
	if err != nil {
		var status *HTTPError
		if errors.As(err, &status) {
			return err
		}
		return fail(fmt.Errorf("download (%d bytes kept in %s for the next try): %w", part.size, incomplete, err))
	}
	if meta.size >= 0 && part.size != meta.size {
		part.file.Close()
		os.Remove(incomplete)
		return fail(fmt.Errorf("got %d bytes, the Hub announced %d; partial file deleted", part.size, meta.size))
	}
	if part.hash != nil {
		if sum := hex.EncodeToString(part.hash.Sum(nil)); sum != meta.etag {
			part.file.Close()
			os.Remove(incomplete)
			return fail(fmt.Errorf("%w: got %s, want %s; the corrupt download was deleted, run again to fetch it anew", ErrChecksum, sum, meta.etag))
		}
	}
	if err := part.file.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(incomplete, blob); err != nil {
		return fail(err)
	}
	return nil
}

// copyBufferSize is the chunk in which downloads are written to disk.
const copyBufferSize = 1 << 20

// downloadRest makes one request for the bytes part still lacks and
// appends them. Failures of the connection are transient; the bytes
// received so far stay for the next attempt.
func (f *fetcher) downloadRest(ctx context.Context, fileURL, name string, meta fileMeta, part *partialBlob, progress *fileProgress) error {
	if meta.size >= 0 && part.size == meta.size {
		return nil
	}
	attemptCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := f.newRequest(attemptCtx, http.MethodGet, fileURL)
	if err != nil {
		return err
	}
	if part.size > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", part.size))
	}
	resp, err := send(f.client, req)
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		// The whole file came back: a server that ignores Range.
		if part.size > 0 {
			if err := part.restart(); err != nil {
				discardBody(resp.Body)
				return err
			}
			progress.set(0)
		}
	case http.StatusPartialContent:
		start, err := contentRangeStart(resp.Header.Get("Content-Range"))
		if err != nil || start != part.size {
			discardBody(resp.Body)
			if err := part.restart(); err != nil {
				return err
			}
			progress.set(0)
			return transientError{fmt.Errorf("server resumed at %q, want byte %d; restarting", resp.Header.Get("Content-Range"), part.size)}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		discardBody(resp.Body)
		if err := part.restart(); err != nil {
			return err
		}
		progress.set(0)
		return transientError{fmt.Errorf("server refused to resume at byte %d; restarting", part.size)}
	default:
		return f.statusError(resp, name)
	}
	defer resp.Body.Close()
	body := newStallReader(resp.Body, f.settings.stallTimeout, cancel)
	defer body.stop()
	if _, err := io.CopyBuffer(io.MultiWriter(part, progress), body, make([]byte, copyBufferSize)); err != nil {
		return err
	}
	if meta.size >= 0 && part.size < meta.size {
		return transientError{fmt.Errorf("connection closed after byte %d of %d", part.size, meta.size)}
	}
	return nil
}

// contentRangeStart reads the first byte position of "bytes START-END/SIZE".
func contentRangeStart(header string) (int64, error) {
	spec, ok := strings.CutPrefix(header, "bytes ")
	if !ok {
		return 0, fmt.Errorf("Content-Range %q: want bytes START-END/SIZE", header)
	}
	start, _, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, fmt.Errorf("Content-Range %q: want bytes START-END/SIZE", header)
	}
	return strconv.ParseInt(start, 10, 64)
}

// partialBlob is a blob being written to its .incomplete file, hashed as
// it grows when its etag is a sha256.
type partialBlob struct {
	file *os.File
	size int64
	hash hash.Hash
}

// openPartialBlob opens (or creates) an incomplete blob positioned at its
// end, with the bytes already there hashed.
func openPartialBlob(path string, hashed bool) (*partialBlob, error) {
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	part := &partialBlob{file: file}
	if hashed {
		part.hash = sha256.New()
		part.size, err = io.Copy(part.hash, file)
	} else {
		part.size, err = file.Seek(0, io.SeekEnd)
	}
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return part, nil
}

// Write appends b to the file and the hash.
func (p *partialBlob) Write(b []byte) (int, error) {
	n, err := p.file.Write(b)
	if p.hash != nil {
		p.hash.Write(b[:n])
	}
	p.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("%s: %w", p.file.Name(), err)
	}
	return n, nil
}

// restart empties the file to download it from its first byte.
func (p *partialBlob) restart() error {
	if err := p.file.Truncate(0); err != nil {
		return fmt.Errorf("%s: %w", p.file.Name(), err)
	}
	if _, err := p.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", p.file.Name(), err)
	}
	p.size = 0
	if p.hash != nil {
		p.hash.Reset()
	}
	return nil
}

// stallReader cancels its request when no byte arrives for a while, and
// marks every read failure transient: the connection broke, not the disk.
type stallReader struct {
	body    io.Reader
	timeout time.Duration
	timer   *time.Timer
	stalled atomic.Bool
}

// newStallReader watches body, calling cancel after timeout without data.
func newStallReader(body io.Reader, timeout time.Duration, cancel context.CancelFunc) *stallReader {
	r := &stallReader{body: body, timeout: timeout}
	r.timer = time.AfterFunc(timeout, func() {
		r.stalled.Store(true)
		cancel()
	})
	return r
}

// Read reads from the body and restarts the stall timer.
func (r *stallReader) Read(b []byte) (int, error) {
	n, err := r.body.Read(b)
	r.timer.Reset(r.timeout)
	if err == nil || err == io.EOF {
		return n, err
	}
	if r.stalled.Load() {
		return n, transientError{fmt.Errorf("no data received for %s", r.timeout)}
	}
	return n, transientError{err}
}

// stop ends the watch.
func (r *stallReader) stop() { r.timer.Stop() }
