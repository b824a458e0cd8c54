package engine

import (
	"fmt"
	"sync"

	"blipflow/model/config"
	"blipflow/model/cuda"
	"blipflow/model/cuda/ops"
	"blipflow/model/device"
	"blipflow/model/nn"
)

// openDevice resolves o.Device (auto, cpu, cuda, cuda:N). On a GPU it
// returns the CUDA ops (o.DType fp32 is the parity mode, anything else
// bf16); on the CPU it returns nil ops and OpenBackend builds the CPU ones.
// auto without a usable GPU falls back to the CPU with one warning.
func (o Options) openDevice(warn func(string)) (nn.Ops, error) {
	d, err := device.Parse(o.Device)
	if err != nil {
		return nil, err
	}
	if o.Device == "" {
		d.Kind = device.CPU // not asked for: the CPU, without probing
	}
	d, w, err := device.Resolve(d, cuda.Available)
	if err != nil {
		return nil, err
	}
	if w != "" {
		warn(w)
	}
	if d.Kind != device.CUDA {
		return nil, nil
	}
	mode, err := ops.ParseMode(o.DType)
	if err != nil {
		return nil, err
	}
	b, err := openCUDA(d.Ordinal, mode)
	if err != nil {
		return nil, fmt.Errorf("--device %s: %w", d, err)
	}
	return ops.NewOps(b), nil
}

var (
	cudaMu       sync.Mutex
	cudaBackends = map[string]*ops.Backend{}
)

// openCUDA opens one backend per device and mode for the process: engines
// opened with the same device share its context, kernels and handles.
func openCUDA(ordinal int, mode ops.Mode) (*ops.Backend, error) {
	cudaMu.Lock()
	defer cudaMu.Unlock()
	key := fmt.Sprintf("%d/%s", ordinal, mode)
	if b, ok := cudaBackends[key]; ok {
		return b, nil
	}
	b, err := ops.Open(ordinal, mode)
	if err != nil {
		return nil, err
	}
	cudaBackends[key] = b
	return b, nil
}

// DeviceMemory reports the free and total memory of the engine's GPU, or
// an error when it runs on the CPU.
func (e *Engine) DeviceMemory() (free, total uint64, err error) {
	g, ok := e.Model.Ops.(*ops.Ops)
	if !ok {
		return 0, 0, fmt.Errorf("engine: %s runs on the CPU", e.Dir)
	}
	return g.B.MemInfo()
}

// OnGPU reports whether the engine runs on a GPU.
func (e *Engine) OnGPU() bool {
	_, ok := e.Model.Ops.(*ops.Ops)
	return ok
}

// DecodeRowBytes estimates one decode row's device memory for newTokens
// new tokens after a prompt of promptLen: its fp32 KV cache over every
// layer, plus the step's activations (a few hidden-width vectors per layer
// and one row of logits).
func (e *Engine) DecodeRowBytes(promptLen, newTokens int) uint64 {
	c := e.Model.Config
	t := c.Text
	layers, width := t.NumHiddenLayers, t.HiddenSize
	if t.ModelType == config.T5 {
		layers, width = t.NumLayers, t.NumHeads*t.DKV
		if t.NumDecoderLayers != nil {
			layers = *t.NumDecoderLayers
		}
		layers *= 2 // self and cross attention caches
	}
	capacity := c.NumQueryTokens + promptLen + newTokens
	kv := device.KVRowBytes(layers, capacity, width, 4)
	act := uint64(8*c.TextHidden()+t.VocabSize) * 4 * 4
	return kv + act
}
