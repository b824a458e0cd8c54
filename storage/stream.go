package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// RangeReader is implemented by stores that stream an object, or part of
// one, as it is consumed instead of reading it whole: an S3 GET (with a
// Range header when not from the start) or a file read.
type RangeReader interface {
	// ReadRange streams the object's bytes from offset on: length bytes,
	// or to the end when length < 0. errors.Is(err, ErrNotExist) when the
	// object is absent.
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
}

// OpenStream returns a reader of the whole object: streamed when store is
// a RangeReader, else read whole first.
func OpenStream(ctx context.Context, store Store, key string) (io.ReadCloser, error) {
	if rr, ok := store.(RangeReader); ok {
		return rr.ReadRange(ctx, key, 0, -1)
	}
	data, err := store.Read(ctx, key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// ReadRange implements RangeReader.
func (s *localStore) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notObjectError("read", key, err)
	}
	if info, err := f.Stat(); err != nil || info.IsDir() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is a folder: %w", p, ErrNotExist)
		}
		return nil, notObjectError("read", key, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s at %d: %w", p, offset, err)
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// ReadRange implements RangeReader with one GET whose body is read as it
// is consumed.
func (s *s3Store) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &k}
	switch {
	case length == 0:
		return io.NopCloser(bytes.NewReader(nil)), nil
	case length > 0:
		r := fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
		in.Range = &r
	case offset > 0:
		r := fmt.Sprintf("bytes=%d-", offset)
		in.Range = &r
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, s.wrap("get object", k, err)
	}
	return out.Body, nil
}
