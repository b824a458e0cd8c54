package storage

import (
	"os"
	"strconv"
	"time"
)

// Defaults applied to zero-valued Config fields.
const (
	DefaultMaxRetries         = 4
	DefaultMaxBackoff         = 5 * time.Second
	DefaultListPageSize       = 1000
	DefaultMultipartThreshold = 16 << 20
	DefaultMultipartPartSize  = 8 << 20
)

// Config holds S3 settings. Zero values mean the standard AWS behaviour:
// credentials and region from the default chain (environment, shared config
// files, IMDS) and the regional AWS endpoint.
type Config struct {
	// Endpoint is a custom S3 endpoint URL such as http://127.0.0.1:7070.
	Endpoint string
	// Region overrides the region from the AWS chain. With a custom Endpoint
	// and no region anywhere, us-east-1 is used.
	Region string
	// PathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key (needed by most S3-compatible servers).
	PathStyle bool
	// AccessKeyID and SecretAccessKey, when both set, replace the credential
	// chain with static credentials.
	AccessKeyID     string
	SecretAccessKey string
	// MaxRetries bounds the retries after the first attempt of each request
	// (0: DefaultMaxRetries, negative: no retries).
	MaxRetries int
	// MaxBackoff caps the jittered exponential delay between retries
	// (0: DefaultMaxBackoff).
	MaxBackoff time.Duration
	// ListPageSize is the MaxKeys of each ListObjectsV2 page
	// (0: DefaultListPageSize; S3 caps it at 1000).
	ListPageSize int32
	// MultipartThreshold is the body size from which Write uploads in
	// parts (0: DefaultMultipartThreshold).
	MultipartThreshold int64
	// MultipartPartSize is the part size of multipart uploads
	// (0: DefaultMultipartPartSize; S3 requires at least 5 MiB).
	MultipartPartSize int64
}

// ConfigFromEnv reads S3 settings from the environment:
//
//	BLIPFLOW_S3_ENDPOINT, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL  -> Endpoint
//	AWS_REGION, else AWS_DEFAULT_REGION                                      -> Region
//	BLIPFLOW_S3_PATH_STYLE (strconv.ParseBool)                               -> PathStyle
//	BLIPFLOW_S3_MAX_RETRIES (integer)                                        -> MaxRetries
//
// When BLIPFLOW_S3_PATH_STYLE is unset or unparsable, PathStyle is true
// exactly when a custom endpoint is set. An unparsable
// BLIPFLOW_S3_MAX_RETRIES leaves MaxRetries at its default. Credentials are
// not read here: the AWS chain reads AWS_ACCESS_KEY_ID etc. itself.
func ConfigFromEnv() Config {
	var cfg Config
	cfg.Endpoint = firstEnv("BLIPFLOW_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	cfg.Region = firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	cfg.PathStyle = cfg.Endpoint != ""
	if v, err := strconv.ParseBool(os.Getenv("BLIPFLOW_S3_PATH_STYLE")); err == nil {
		cfg.PathStyle = v
	}
	if v, err := strconv.Atoi(os.Getenv("BLIPFLOW_S3_MAX_RETRIES")); err == nil {
		cfg.MaxRetries = v
	}
	return cfg
}

// firstEnv returns the value of the first non-empty variable among names.
func firstEnv(names ...string) string {
	for _, name := range names {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	return ""
}
