package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"blipflow/model/device"
	"blipflow/model/engine"
	"blipflow/model/engine/continuous"
	"blipflow/model/generate"
	"blipflow/pipeline"
	"blipflow/pipeline/blip2model"
	"blipflow/pipeline/metrics"
	"blipflow/pipeline/node"
)

// batchingFlags choose how `worker run` batches the model: plain batches
// (one model call per batch of a shard) or continuous batching (the
// shards' images share one decode batch that rows leave and join).
type batchingFlags struct {
	mode        string
	maxBatch    int
	encodeBatch int
	reserveMiB  int
}

func (b *batchingFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.mode, "continuous", node.EnvString("BLIPFLOW_CONTINUOUS", "auto"), "continuous batching across shards: auto (on a GPU), on or off (env BLIPFLOW_CONTINUOUS)")
	fs.IntVar(&b.maxBatch, "max-batch", node.EnvInt("BLIPFLOW_MAX_BATCH", 0), "cap on the decode batch under continuous batching (0: as many rows as free GPU memory holds, 32 on the CPU; env BLIPFLOW_MAX_BATCH)")
	fs.IntVar(&b.encodeBatch, "encode-batch", node.EnvInt("BLIPFLOW_ENCODE_BATCH", 64), "images per vision encoder and Q-Former run under continuous batching (env BLIPFLOW_ENCODE_BATCH)")
	fs.IntVar(&b.reserveMiB, "gpu-reserve-mib", node.EnvInt("BLIPFLOW_GPU_RESERVE_MIB", 2048), "GPU memory kept free when sizing the decode batch (env BLIPFLOW_GPU_RESERVE_MIB)")
}

// loader opens checkpoints for the pipeline, with continuous batching when
// the flags ask for it (auto: on a GPU), registering the device metrics on
// reg.
func (b *batchingFlags) loader(rt *engine.Options, gen generate.Config, reg prometheus.Registerer, log *slog.Logger) (pipeline.ModelLoader, error) {
	mode := strings.ToLower(b.mode)
	if mode != "auto" && mode != "on" && mode != "off" {
		return nil, fmt.Errorf("--continuous %q: want auto, on or off", b.mode)
	}
	return func(ctx context.Context, ref string) (pipeline.Model, error) {
		e, err := engine.Open(ctx, ref, *rt)
		if err != nil {
			return nil, err
		}
		if mode == "off" || (mode == "auto" && !e.OnGPU()) {
			return blip2model.New(e, gen), nil
		}
		cfg := continuous.Config{EncodeBatch: b.encodeBatch, MaxRows: b.maxBatch}
		name := "cpu"
		var mem metrics.MemInfo
		if e.OnGPU() {
			d, _ := device.Parse(rt.Device)
			name, mem = d.String(), e.DeviceMemory
			free, _, err := e.DeviceMemory()
			if err != nil {
				e.Close()
				return nil, err
			}
			newTokens := e.Model.DecodeCapacity(e.Generation.Merge(gen), 0)
			sizing := device.Sizing{Free: free, Reserve: uint64(b.reserveMiB) << 20, PerRow: e.DecodeRowBytes(32, newTokens), Cap: b.maxBatch}
			if cfg.MaxRows, err = sizing.DecodeBatch(); err != nil {
				e.Close()
				return nil, fmt.Errorf("%s on %s: %w", ref, name, err)
			}
		}
		dm := metrics.NewDevice(reg, name, mem)
		cfg.Observe = func(s continuous.Stats) { dm.ObserveStep(s.Rows, s.MaxRows, s.Queued, s.Encoded, s.Shrinks) }
		m, err := blip2model.NewContinuous(e, gen, cfg)
		if err != nil {
			e.Close()
			return nil, err
		}
		log.Info("continuous batching", "device", name, "decode_rows_cap", cfg.MaxRows, "encode_batch", cfg.EncodeBatch)
		return m, nil
	}, nil
}
