package pipeline

import (
	"fmt"
	"strings"
)

// Task says what the model computes for each image.
type Task struct {
	// Caption asks for generated captions (and their token ids).
	Caption bool
	// Embed asks for the image embedding.
	Embed bool
	// Prompt is an optional text prefix the captions continue.
	Prompt string
	// PromptColumn, when set, names the input manifest column that gives
	// each image its own prompt (visual question answering over a
	// dataset); rows without a value use Prompt.
	PromptColumn string
	// Generation overrides the model's caption generation settings: a
	// generation_config.json object ("" for none).
	Generation string
}

// Task names accepted by ParseTask and returned by Task.Name.
const (
	TaskCaption = "caption"
	TaskEmbed   = "embed"
	TaskBoth    = "both"
)

// ParseTask turns "caption", "embed" or "both" and a prompt into a Task.
func ParseTask(name, prompt string) (Task, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case TaskCaption, "":
		return Task{Caption: true, Prompt: prompt}, nil
	case TaskEmbed:
		if prompt != "" {
			return Task{}, fmt.Errorf("task %q: a prompt only applies to captions", name)
		}
		return Task{Embed: true}, nil
	case TaskBoth:
		return Task{Caption: true, Embed: true, Prompt: prompt}, nil
	default:
		return Task{}, fmt.Errorf("task %q: want %s, %s or %s", name, TaskCaption, TaskEmbed, TaskBoth)
	}
}

// Name returns the task's name as ParseTask accepts it.
func (t Task) Name() string {
	switch {
	case t.Caption && t.Embed:
		return TaskBoth
	case t.Embed:
		return TaskEmbed
	default:
		return TaskCaption
	}
}
