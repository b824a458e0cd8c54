package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"time"

	"blipflow/model/imageproc"
)

// NopModelName is the --model value of the built-in NopModel.
const NopModelName = "nop"

// NopEmbeddingDim is the embedding width of a NopModel with Dim 0.
const NopEmbeddingDim = 8

// ErrPoisoned is the error a NopModel returns for a batch holding a key
// that contains its FailOn marker.
var ErrPoisoned = errors.New("nop model: poisoned key")

// NopModel stands in for BLIP-2 where only the plumbing matters: it answers
// instantly, with a caption derived from the image's key and pixels (so a
// test can check that each output row carries its own image), and a zero
// embedding.
type NopModel struct {
	// FailOn, when not empty, makes Run fail for every batch that holds a
	// key containing it (a poison image for tests: the worker isolates it
	// into an error row).
	FailOn string
	// FailBatchOn is FailOn with a BatchError: the batch as a whole is
	// reported broken, so the shard holding the key fails (a poison shard
	// for tests).
	FailBatchOn string
	// Delay is how long each Run takes (simulated model time).
	Delay time.Duration
	// Dim is the embedding width (0: NopEmbeddingDim).
	Dim int
	// Pixels is the image preprocessing configuration (zero:
	// imageproc.DefaultConfig, BLIP-2's 224×224).
	Pixels *imageproc.Config
}

// ParseNopModel builds a NopModel from "nop" or "nop:OPT,OPT..." where
// OPT is fail=SUBSTR (see FailOn), failbatch=SUBSTR (see FailBatchOn) or
// delay=DURATION (see Delay).
func ParseNopModel(spec string) (*NopModel, error) {
	m := &NopModel{}
	_, opts, _ := strings.Cut(spec, ":")
	if opts == "" {
		return m, nil
	}
	for _, opt := range strings.Split(opts, ",") {
		name, value, _ := strings.Cut(opt, "=")
		switch name {
		case "fail":
			if value == "" {
				return nil, fmt.Errorf("model %q: fail= needs a key substring", spec)
			}
			m.FailOn = value
		case "failbatch":
			if value == "" {
				return nil, fmt.Errorf("model %q: failbatch= needs a key substring", spec)
			}
			m.FailBatchOn = value
		case "delay":
			d, err := time.ParseDuration(value)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("model %q: delay=%q: want a duration such as 20ms", spec, value)
			}
			m.Delay = d
		default:
			return nil, fmt.Errorf("model %q: unknown option %q (want fail=SUBSTR, failbatch=SUBSTR or delay=DURATION)", spec, name)
		}
	}
	return m, nil
}

// ID implements Model.
func (m *NopModel) ID() string { return NopModelName }

// EmbeddingSpec implements Model.
func (m *NopModel) EmbeddingSpec() EmbeddingSpec {
	dim := m.Dim
	if dim <= 0 {
		dim = NopEmbeddingDim
	}
	return EmbeddingSpec{Kind: "nop", Vectors: 1, Dim: dim}
}

// Preprocessor implements Model.
func (m *NopModel) Preprocessor() (Preprocessor, error) {
	cfg := imageproc.DefaultConfig()
	if m.Pixels != nil {
		cfg = *m.Pixels
	}
	p, err := imageproc.New(cfg, imageproc.Options{})
	if err != nil {
		return nil, fmt.Errorf("nop model: %w", err)
	}
	return p, nil
}

// Run implements Model.
func (m *NopModel) Run(ctx context.Context, task Task, batch []Image) ([]Result, error) {
	if m.Delay > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(m.Delay):
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	results := make([]Result, len(batch))
	for i, img := range batch {
		if m.FailOn != "" && strings.Contains(img.Key, m.FailOn) {
			return nil, fmt.Errorf("image %s: %w", img.Key, ErrPoisoned)
		}
		if m.FailBatchOn != "" && strings.Contains(img.Key, m.FailBatchOn) {
			return nil, &BatchError{Err: fmt.Errorf("batch with image %s: %w", img.Key, ErrPoisoned)}
		}
		if task.Caption {
			results[i].Captions = []string{NopCaption(task.Prompt, img)}
			results[i].TokenIDs = [][]int32{{int32(len(img.Pixels) % math.MaxInt32)}}
		}
		if task.Embed {
			results[i].Embedding = make([]float32, m.EmbeddingSpec().Dim)
		}
	}
	return results, nil
}

// NopCaption is the caption a NopModel gives img: the prompt, the key and a
// CRC-32C of the pixels (so a row's caption proves which pixels it saw).
func NopCaption(prompt string, img Image) string {
	buf := make([]byte, 4*len(img.Pixels))
	for i, v := range img.Pixels {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	caption := fmt.Sprintf("%s %08x", img.Key, crc32.Checksum(buf, crcTable))
	if prompt != "" {
		caption = prompt + " " + caption
	}
	return caption
}

// crcTable is the CRC-32C table of NopCaption (read-only after init).
var crcTable = crc32.MakeTable(crc32.Castagnoli)
