package fetch

import (
	"flag"

	"blipflow/pipeline/node"
)

// RegisterFlags binds the fetch settings to fs, with defaults from
// BLIPFLOW_FETCH_TIMEOUT, BLIPFLOW_FETCH_RETRIES, BLIPFLOW_FETCH_MAX_BYTES
// and BLIPFLOW_FETCH_PER_HOST.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Timeout, "fetch-timeout", node.EnvDuration("BLIPFLOW_FETCH_TIMEOUT", DefaultTimeout), "time one download of an image URL may take (env BLIPFLOW_FETCH_TIMEOUT)")
	fs.IntVar(&c.Retries, "fetch-retries", node.EnvInt("BLIPFLOW_FETCH_RETRIES", DefaultRetries), "retries of a download after a 5xx answer, a timeout or a connection error; -1: none (env BLIPFLOW_FETCH_RETRIES)")
	fs.Int64Var(&c.MaxBytes, "fetch-max-bytes", int64(node.EnvInt("BLIPFLOW_FETCH_MAX_BYTES", DefaultMaxBytes)), "largest image a URL may return, in bytes (env BLIPFLOW_FETCH_MAX_BYTES)")
	fs.IntVar(&c.PerHost, "fetch-per-host", node.EnvInt("BLIPFLOW_FETCH_PER_HOST", DefaultPerHost), "downloads from one host at once (env BLIPFLOW_FETCH_PER_HOST)")
}
