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
// Hugging Face name), generating with the checkpoint's defaults.
func localModels() pipeline.ModelConfig {
	return pipeline.ModelConfig{
		Checkpoint: blip2model.Loader(engine.Options{Hub: hub.Options{Progress: os.Stderr}}, generate.Config{}),
	}
}
