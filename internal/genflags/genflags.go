// Package genflags registers the caption generation settings as typed
// command-line flags (booleans take no value, integers and floats are
// parsed as such), shared by `worker caption` and `coordinator run`. Only
// the flags given on the command line override the checkpoint's
// generation_config.json.
package genflags

import (
	"flag"
	"fmt"
	"strings"

	"blipflow/model/generate"
)

// Flags holds the registered flags of one flag set.
type Flags struct {
	fs                               *flag.FlagSet
	maxNew, minNew, beams, returnSeq *int
	noRepeat, topK                   *int
	repetition, lengthPen, temp      *float64
	topP                             *float64
	doSample                         *bool
	earlyStop                        *string
	seed                             *uint64
}

// Register adds the generation flags to fs.
func Register(fs *flag.FlagSet) *Flags {
	return &Flags{
		fs:         fs,
		maxNew:     fs.Int("max-new-tokens", 0, "most new tokens per caption (default: the checkpoint's, else 20)"),
		minNew:     fs.Int("min-new-tokens", 0, "fewest new tokens before end-of-sequence may end a caption"),
		beams:      fs.Int("num-beams", 0, "beam search with this many beams (1: greedy; default: the checkpoint's)"),
		returnSeq:  fs.Int("num-return-sequences", 0, "captions returned per image (at most --num-beams, or any number with --do-sample)"),
		repetition: fs.Float64("repetition-penalty", 0, "penalty for repeating tokens, prompt included (1: off)"),
		noRepeat:   fs.Int("no-repeat-ngram-size", 0, "never repeat an n-gram of this size (0: off)"),
		lengthPen:  fs.Float64("length-penalty", 0, "beam search: exponent of the length that divides a finished beam's score"),
		earlyStop:  fs.String("early-stopping", "", "beam search stopping rule: true, false or never"),
		doSample:   fs.Bool("do-sample", false, "sample tokens at random instead of taking the best (--do-sample=false turns off a checkpoint's sampling)"),
		temp:       fs.Float64("temperature", 0, "with --do-sample: divide the scores by this before sampling"),
		topK:       fs.Int("top-k", 0, "with --do-sample: sample among the K best tokens (0: all)"),
		topP:       fs.Float64("top-p", 0, "with --do-sample: sample among the best tokens of this total probability"),
		seed:       fs.Uint64("seed", 0, "with --do-sample: seed that makes sampling repeatable"),
	}
}

// Config returns the settings given on the command line, checking each
// value on its own (the checks that need the checkpoint's defaults too are
// generate.Config.Validate's). The error names the flag at fault.
func (f *Flags) Config() (generate.Config, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var c generate.Config
	var errs []string
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("--%s: %s", name, fmt.Sprintf(format, args...)))
	}
	intAtLeast := func(name string, v *int, least int, dst **int) {
		if !set[name] {
			return
		}
		if *v < least {
			bad(name, "want an integer of at least %d, got %d", least, *v)
			return
		}
		*dst = generate.Int(*v)
	}
	intAtLeast("max-new-tokens", f.maxNew, 1, &c.MaxNewTokens)
	intAtLeast("min-new-tokens", f.minNew, 0, &c.MinNewTokens)
	intAtLeast("num-beams", f.beams, 1, &c.NumBeams)
	intAtLeast("num-return-sequences", f.returnSeq, 1, &c.NumReturnSequences)
	intAtLeast("no-repeat-ngram-size", f.noRepeat, 0, &c.NoRepeatNGramSize)
	intAtLeast("top-k", f.topK, 0, &c.TopK)
	if set["repetition-penalty"] {
		if !(*f.repetition > 0) {
			bad("repetition-penalty", "want a positive number, got %v", *f.repetition)
		} else {
			c.RepetitionPenalty = generate.Float(*f.repetition)
		}
	}
	if set["length-penalty"] {
		c.LengthPenalty = generate.Float(*f.lengthPen)
	}
	if set["temperature"] {
		if !(*f.temp > 0) {
			bad("temperature", "want a positive number, got %v", *f.temp)
		} else {
			c.Temperature = generate.Float(*f.temp)
		}
	}
	if set["top-p"] {
		if !(*f.topP >= 0 && *f.topP <= 1) {
			bad("top-p", "want a number from 0 to 1, got %v", *f.topP)
		} else {
			c.TopP = generate.Float(*f.topP)
		}
	}
	if set["early-stopping"] {
		switch strings.ToLower(strings.TrimSpace(*f.earlyStop)) {
		case "true":
			c.EarlyStopping = generate.EarlyStop(generate.EarlyStopWhenFull)
		case "false":
			c.EarlyStopping = generate.EarlyStop(generate.EarlyStopHeuristic)
		case "never":
			c.EarlyStopping = generate.EarlyStop(generate.EarlyStopNever)
		default:
			bad("early-stopping", "want true, false or never, got %q", *f.earlyStop)
		}
	}
	if set["do-sample"] {
		c.DoSample = generate.Bool(*f.doSample)
	}
	if set["seed"] {
		c.Seed = generate.Uint64(*f.seed)
	}
	if len(errs) > 0 {
		return generate.Config{}, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return c, nil
}
