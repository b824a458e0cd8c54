package jobstate

import "time"

// RetryRound records one `coordinator retry` of a job: its failed images
// re-run as a job of their own (Job), whose rows then replace the failed
// ones in the job's shard files.
type RetryRound struct {
	Round int `json:"round"`
	// Job is the id the round's shards run under.
	Job string `json:"job"`
	// Plan is the output key of the round's plan (which keys of which
	// shards it re-runs).
	Plan string `json:"plan"`
	// Shards and Images count the shards touched and the images re-run.
	Shards int `json:"shards"`
	Images int `json:"images"`
	// Fixed counts re-run images that no longer carry an error; Failing
	// those that still do or whose round shard was dead-lettered.
	Fixed   int `json:"fixed"`
	Failing int `json:"failing"`
	// Finished is set once the round's rows are merged into the job's
	// files.
	Finished   bool      `json:"finished"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}
