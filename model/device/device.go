// Package device parses the --device flag (auto, cpu, cuda or cuda:N),
// sizes GPU batches from free memory, and defines the out-of-memory error
// every backend's allocation failures match, so schedulers can shrink a
// batch instead of failing it.
package device

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind is the kind of device the model runs on.
type Kind string

// Kinds.
const (
	Auto Kind = "auto" // CUDA when a GPU and its libraries are present, else CPU
	CPU  Kind = "cpu"
	CUDA Kind = "cuda"
)

// Device is a parsed --device value.
type Device struct {
	Kind Kind
	// Ordinal is the GPU index of cuda:N (0 for plain cuda).
	Ordinal int
}

// String formats d as the flag accepts it.
func (d Device) String() string {
	if d.Kind == CUDA && d.Ordinal != 0 {
		return fmt.Sprintf("cuda:%d", d.Ordinal)
	}
	if d.Kind == "" {
		return string(Auto)
	}
	return string(d.Kind)
}

// Parse reads auto, cpu, cuda or cuda:N (case-insensitive, spaces trimmed).
func Parse(s string) (Device, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "", "auto":
		return Device{Kind: Auto}, nil
	case "cpu":
		return Device{Kind: CPU}, nil
	case "cuda", "gpu":
		return Device{Kind: CUDA}, nil
	}
	if rest, ok := strings.CutPrefix(v, "cuda:"); ok {
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			return Device{}, fmt.Errorf("device %q: the GPU index after cuda: must be a number 0 or above", s)
		}
		return Device{Kind: CUDA, Ordinal: n}, nil
	}
	return Device{}, fmt.Errorf("device %q: want auto, cpu, cuda or cuda:N", s)
}

// Set implements flag.Value.
func (d *Device) Set(s string) error {
	p, err := Parse(s)
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// Usage is the flag's help text.
const Usage = "device to run the model on: auto (a GPU when one is usable, else the CPU), cpu, cuda or cuda:N"

// Probe says whether a GPU is usable, with the one-line reason when not
// (package cuda's Available).
type Probe func() error

// Resolve turns auto into cpu or cuda using probe. An explicit cuda that
// probe refuses is an error naming why; auto falls back to the CPU and
// returns the reason as a warning.
func Resolve(d Device, probe Probe) (Device, string, error) {
	switch d.Kind {
	case CPU:
		return d, "", nil
	case CUDA:
		if err := probe(); err != nil {
			return d, "", fmt.Errorf("--device %s: %w", d, err)
		}
		return d, "", nil
	default:
		if err := probe(); err != nil {
			return Device{Kind: CPU}, "no GPU, running on the CPU: " + err.Error(), nil
		}
		return Device{Kind: CUDA}, "", nil
	}
}

// ErrOutOfMemory is matched (errors.Is) by every backend's out-of-memory
// failure.
var ErrOutOfMemory = errors.New("out of device memory")

// Sizing describes the memory a decode batch needs.
type Sizing struct {
	// Free is the device's free memory after the weights are loaded.
	Free uint64
	// Reserve is kept free for workspaces and fragmentation.
	Reserve uint64
	// PerRow is what one decode row costs at full capacity: its KV cache
	// (layers · 2 · capacity · width · element size) and activations.
	PerRow uint64
	// Cap is the most rows wanted (the --max-batch flag; 0: no cap).
	Cap int
}

// DecodeBatch returns the number of rows that fit, at least 1 and at most
// Cap, with an error when not even one row fits.
func (s Sizing) DecodeBatch() (int, error) {
	if s.PerRow == 0 {
		return 0, fmt.Errorf("device sizing: a row's size is unknown")
	}
	if s.Free <= s.Reserve || (s.Free-s.Reserve)/s.PerRow == 0 {
		return 0, fmt.Errorf("device sizing: %d MiB free (%d MiB reserved) holds no decode row of %d MiB: %w",
			s.Free>>20, s.Reserve>>20, s.PerRow>>20, ErrOutOfMemory)
	}
	n := (s.Free - s.Reserve) / s.PerRow
	if s.Cap > 0 && n > uint64(s.Cap) {
		n = uint64(s.Cap)
	}
	if n > 1<<20 {
		n = 1 << 20
	}
	return int(n), nil
}

// KVRowBytes is one row's KV cache: layers · 2 (K and V) · capacity steps ·
// width · bytes per element.
func KVRowBytes(layers, capacity, width, elemBytes int) uint64 {
	return uint64(layers) * 2 * uint64(capacity) * uint64(width) * uint64(elemBytes)
}
