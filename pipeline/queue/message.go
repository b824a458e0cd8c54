package queue

import (
	"bytes"
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
	// Images is the number of keys (also when they are behind KeysRef;
	// 0 for an Archive shard, whose samples only the worker learns).
	Images int `json:"images"`
	// Sources and Extras, when set, parallel Keys (and move with them
	// behind KeysRef): where each image is read (an http(s) URL or an
	// absolute location; "" for the key under the job's input) and the
	// columns carried through to its output row.
	Sources []string            `json:"sources,omitempty"`
	Extras  []map[string]string `json:"extras,omitempty"`
	// Archive, when set, is the location of a WebDataset tar whose samples
	// are the shard's images; Keys is then empty.
	Archive string `json:"archive,omitempty"`
}

// ShardList is the object behind KeysRef when a shard has Sources or
// Extras (otherwise it is a JSON array of the keys).
type ShardList struct {
	Keys    []string            `json:"keys"`
	Sources []string            `json:"sources,omitempty"`
	Extras  []map[string]string `json:"extras,omitempty"`
}

// Check reports a list whose Sources or Extras do not parallel its Keys.
func (l ShardList) Check() error {
	if (l.Sources != nil && len(l.Sources) != len(l.Keys)) || (l.Extras != nil && len(l.Extras) != len(l.Keys)) {
		return fmt.Errorf("%d keys but %d sources and %d extras", len(l.Keys), len(l.Sources), len(l.Extras))
	}
	return nil
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
	if err := (ShardList{Keys: t.Keys, Sources: t.Sources, Extras: t.Extras}).Check(); err != nil && t.KeysRef == "" {
		return ShardTask{}, fmt.Errorf("shard %s of job %s: %w", t.Shard, t.Job, err)
	}
	return t, nil
}

// Progress is a best-effort note a worker publishes while it processes a
// shard: how many of its images are through the model so far.
type Progress struct {
	Shard  string `json:"shard"`
	Images int    `json:"images"`
}

// DecodeShardList reads the object behind KeysRef: a JSON array of keys,
// or a ShardList.
func DecodeShardList(data []byte) (ShardList, error) {
	var list ShardList
	var err error
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' {
		err = json.Unmarshal(trimmed, &list.Keys)
	} else if err = json.Unmarshal(data, &list); err == nil {
		err = list.Check()
	}
	return list, err
}
