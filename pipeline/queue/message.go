package queue

import (
	"encoding/json"
	"fmt"
)

// ShardTask is the body of a shard message. Job-wide settings (input,
// output, task) live in the job spec in jobstate; the message names the
// job and carries the shard's keys, or, for shards too large for one NATS
// message, the key of a JSON list of them in the job's output store.
type ShardTask struct {
	Job   string   `json:"job"`
	Shard string   `json:"shard"`
	Keys  []string `json:"keys,omitempty"`
	// KeysRef is the output-store key of a JSON array of the keys, set
	// instead of Keys when they do not fit in a message.
	KeysRef string `json:"keys_ref,omitempty"`
	// Images is the number of keys (also when they are behind KeysRef).
	Images int `json:"images"`
}

// Encode returns the message body.
func (t ShardTask) Encode() ([]byte, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode shard %s of job %s: %w", t.Shard, t.Job, err)
	}
	return data, nil
}

// DecodeShardTask parses a message body.
func DecodeShardTask(data []byte) (ShardTask, error) {
	var t ShardTask
	if err := json.Unmarshal(data, &t); err != nil {
		return ShardTask{}, fmt.Errorf("decode shard message: %w", err)
	}
	if t.Job == "" || t.Shard == "" {
		return ShardTask{}, fmt.Errorf("decode shard message: missing job or shard id in %.200q", data)
	}
	if t.Keys == nil && t.KeysRef == "" && t.Images > 0 {
		return ShardTask{}, fmt.Errorf("shard %s of job %s: message has neither keys nor keys_ref", t.Shard, t.Job)
	}
	return t, nil
}

// Progress is a best-effort note a worker publishes while it processes a
// shard: how many of its images are through the model so far.
type Progress struct {
	Shard  string `json:"shard"`
	Images int    `json:"images"`
}
