package main

import (
	"os"

	"blipflow/model/engine"
	"blipflow/model/generate"
	"blipflow/model/hub"
	"blipflow/pipeline"
	"blipflow/pipeline/blip2model"
)

// localModels says how `coordinator run --local` loads --model values
// other than the built-in nop model: BLIP-2 checkpoints (a folder or a
// Hugging Face name), generating with the checkpoint's defaults, on the
// runtime rt describes (--backend, --dtype).
func localModels(rt engine.Options) pipeline.ModelConfig {
	rt.Hub = hub.Options{Progress: os.Stderr}
	return pipeline.ModelConfig{
		Checkpoint: blip2model.Loader(rt, generate.Config{}),
	}
}
