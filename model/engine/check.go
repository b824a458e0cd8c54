package engine

import (
	"fmt"

	"blipflow/model/blip2"
	"blipflow/model/generate"
)

// CheckCaption reports, without running the model, why captioning with
// prompt and gen (over the checkpoint's defaults) cannot succeed: a
// checkpoint without a language model, generation settings it refuses,
// or a prompt whose tokens plus the new ones exceed the language model's
// positions. Such errors are the same for every image.
func (e *Engine) CheckCaption(prompt string, gen generate.Config) error {
	if e.Model.LM == nil {
		return fmt.Errorf("engine: %s has no language model to caption with (a retrieval checkpoint: use the embed task)", e.Name)
	}
	cfg := e.Generation.Merge(gen)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("engine: generation settings: %w", err)
	}
	ids, _, err := e.prompts([]string{prompt})
	if err != nil {
		return err
	}
	if _, ok := e.Model.LM.(*blip2.OPT); !ok {
		return nil // T5's relative positions have no limit
	}
	tokens := len(ids[0])
	if e.Model.Config.ImageTokenIndex == nil { // the queries go before the prompt
		tokens += e.Model.Config.NumQueryTokens
	}
	maxNew := 20
	if cfg.MaxNewTokens != nil {
		maxNew = *cfg.MaxNewTokens
	} else if cfg.MaxLength != nil {
		maxNew = max(*cfg.MaxLength-len(ids[0]), 0)
	}
	if limit := e.Model.Config.Text.MaxPositionEmbeddings; tokens+maxNew > limit {
		return fmt.Errorf("engine: prompt of %d tokens plus %d new ones exceeds %s's %d positions", tokens, maxNew, e.Name, limit)
	}
	return nil
}
