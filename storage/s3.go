package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"net"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"blipflow/internal/redact"
)

// s3Store keeps objects in an S3 bucket under a key prefix.
type s3Store struct {
	url      string // the location as given to Open
	bucket   string
	prefix   string // "" or ending in '/'
	endpoint string // custom endpoint for error messages, "" for AWS
	pageSize int32
	client   *s3.Client
	uploader *transfermanager.Client
	retries  bool // the SDK retries failed requests (MaxRetries >= 0)
}

// openS3 builds an S3 client from the AWS default chain overlaid with cfg.
func openS3(ctx context.Context, location, bucket, prefix string, cfg Config) (*s3Store, error) {
	maxAttempts := 1 + DefaultMaxRetries
	switch {
	case cfg.MaxRetries > 0:
		maxAttempts = 1 + cfg.MaxRetries
	case cfg.MaxRetries < 0:
		maxAttempts = 1
	}
	maxBackoff := cfg.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = DefaultMaxBackoff
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = maxBackoff
				// Every request gets its full retry budget: a batch job
				// rides out an outage instead of failing fast once a
				// client-wide retry quota is spent.
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" && cfg.SecretAccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: load AWS configuration: %w", location, err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, fmt.Errorf("%s: no AWS region configured (set AWS_REGION or the shared config's region)", location)
		}
		awsCfg.Region = "us-east-1"
	}
	if cfg.Endpoint != "" {
		if u, err := url.Parse(cfg.Endpoint); err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("%s: S3 endpoint %q is not an absolute URL like http://host:port", location, redact.URL(cfg.Endpoint))
		}
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	threshold := cfg.MultipartThreshold
	if threshold <= 0 {
		threshold = DefaultMultipartThreshold
	}
	partSize := cfg.MultipartPartSize
	if partSize <= 0 {
		partSize = DefaultMultipartPartSize
	}
	uploader := transfermanager.New(client, func(o *transfermanager.Options) {
		o.MultipartUploadThreshold = threshold
		o.PartSizeBytes = partSize
	})
	pageSize := cfg.ListPageSize
	if pageSize <= 0 {
		pageSize = DefaultListPageSize
	}
	return &s3Store{
		url:      location,
		bucket:   bucket,
		prefix:   prefix,
		endpoint: cfg.Endpoint,
		pageSize: pageSize,
		client:   client,
		uploader: uploader,
		retries:  maxAttempts > 1,
	}, nil
}

func (s *s3Store) URL() string { return s.url }

// objectKey returns the bucket key of a store key after validating it.
func (s *s3Store) objectKey(key string) (string, error) {
	if err := checkKey(s.url, key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// objectURL names a bucket key in error messages.
func (s *s3Store) objectURL(bucketKey string) string {
	return "s3://" + s.bucket + "/" + bucketKey
}

func (s *s3Store) Read(ctx context.Context, key string) ([]byte, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return nil, s.wrap("get object", k, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if out.ContentLength != nil && *out.ContentLength > 0 {
		buf.Grow(int(*out.ContentLength))
	}
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, s.wrap("read object body", k, err)
	}
	return buf.Bytes(), nil
}

func (s *s3Store) Stat(ctx context.Context, key string) (Object, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return Object{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return Object{}, s.wrap("head object", k, err)
	}
	return Object{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    aws.ToString(out.ETag),
		ModTime: aws.ToTime(out.LastModified),
	}, nil
}

// Write uploads data with one PutObject (atomic by S3's semantics) or, from
// the multipart threshold on, as a multipart upload, which S3 also publishes
// atomically on completion.
func (s *s3Store) Write(ctx context.Context, key string, data []byte) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	_, err = s.uploader.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket:        &s.bucket,
		Key:           &k,
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return s.wrap("put object", k, err)
	}
	return nil
}

func (s *s3Store) Delete(ctx context.Context, key string) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &k}); err != nil {
		err = s.wrap("delete object", k, err)
		if errors.Is(err, ErrNotExist) {
			return nil
		}
		return err
	}
	return nil
}

// List pages through ListObjectsV2, which returns keys in UTF-8 binary order.
// Directory-marker objects (keys ending in '/') are skipped.
func (s *s3Store) List(ctx context.Context, prefix string, fn func(Object) error) error {
	full := s.prefix + prefix
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:  &s.bucket,
		Prefix:  &full,
		MaxKeys: aws.Int32(s.pageSize),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.wrap("list objects", full, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			rel, ok := strings.CutPrefix(k, s.prefix)
			if !ok || rel == "" || strings.HasSuffix(rel, "/") {
				continue
			}
			obj := Object{
				Key:     rel,
				Size:    aws.ToInt64(o.Size),
				ETag:    aws.ToString(o.ETag),
				ModTime: aws.ToTime(o.LastModified),
			}
			if err := fn(obj); err != nil {
				return err
			}
		}
	}
	return nil
}

// wrap names the object (and the endpoint when it could not be reached) in
// an SDK error, and maps missing objects to ErrNotExist.
func (s *s3Store) wrap(op, bucketKey string, err error) error {
	loc := s.objectURL(bucketKey)
	if isNotFound(err) {
		return fmt.Errorf("%s: %w", loc, ErrNotExist)
	}
	if endpoint, ok := s.unreachableEndpoint(err); ok {
		return fmt.Errorf("%s: endpoint %s unreachable: %w", loc, redact.URL(endpoint), redact.Err(err))
	}
	return fmt.Errorf("%s: %s: %w", loc, op, redact.Err(err))
}

// isNotFound reports whether err says the object is absent. A missing bucket
// is a configuration error, not a missing object.
func isNotFound(err error) bool {
	var noKey *types.NoSuchKey
	var notFound *types.NotFound
	if errors.As(err, &noKey) || errors.As(err, &notFound) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// unreachableEndpoint reports whether err is a failure to connect (dial or
// name resolution),
// and if so which endpoint was being contacted.
func (s *s3Store) unreachableEndpoint(err error) (string, bool) {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	dialFailed := errors.As(err, &opErr) && opErr.Op == "dial"
	if !dialFailed && !errors.As(err, &dnsErr) {
		return "", false
	}
	if s.endpoint != "" {
		return s.endpoint, true
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if u, perr := url.Parse(urlErr.URL); perr == nil {
			return u.Scheme + "://" + u.Host, true
		}
	}
	return "(default AWS S3 endpoint)", true
}

// compile-time checks that both back ends implement Store.
var (
	_ Store = (*s3Store)(nil)
	_ Store = (*localStore)(nil)
)

// SelfRetrying reports whether s retries failed requests itself (an S3
// store whose SDK retryer makes more than one attempt, Config.MaxRetries
// >= 0), so that callers do not retry around those retries.
func SelfRetrying(s Store) bool {
	s3s, ok := s.(*s3Store)
	return ok && s3s.retries
}
