// Package engine bundles a BLIP-2 checkpoint with everything that turns
// images and prompts into its inputs and its outputs into text: the model,
// the tokenizer, the processor, the image processor and the generation
// defaults. Commands and the pipeline use it to caption and embed images.
package engine

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"blipflow/model/blas"
	"blipflow/model/blip2"
	"blipflow/model/generate"
	"blipflow/model/hub"
	"blipflow/model/imageproc"
	"blipflow/model/nn"
	"blipflow/model/processor"
	"blipflow/model/tokenizer"
)

// Options configure Open.
type Options struct {
	// Backend is the ops the model runs on. Nil builds CPU ops from BLAS
	// (or BLASKind) and DType (see OpenBackend).
	Backend nn.Ops
	// BLAS is the fp32 matrix backend; nil loads the one BLASKind names
	// (empty: $BLIPFLOW_BLAS, else OpenBLAS when present, else pure Go)
	// and reports a fallback through Warn.
	BLAS blas.Backend
	// BLASKind is auto, go or openblas (used when BLAS is nil).
	BLASKind string
	// DType is the weight dtype: auto (empty), bf16 or fp32.
	DType string
	// Hub configures the download of a model given by name.
	Hub hub.Options
	// Warn receives one-line warnings (nil: standard error).
	Warn func(string)
	// MaxPixels refuses larger images before decoding (0: the default).
	MaxPixels int
}

// Engine is a loaded checkpoint ready to caption and embed images. Its
// methods are safe for concurrent use; model runs are serialised, since each
// already uses every core.
type Engine struct {
	// Dir is the checkpoint folder; Name the model as the user named it.
	Dir, Name string
	// Fingerprint identifies the checkpoint's content wherever it is stored,
	// so tables made from it can be told apart from other models' tables.
	Fingerprint string
	Model       *blip2.Model
	// Retrieval holds the image-text retrieval heads; its methods report
	// which tensors a checkpoint without them lacks.
	Retrieval *blip2.Retrieval
	Tokenizer *tokenizer.Tokenizer
	Processor *processor.Processor
	Images    *imageproc.Processor
	// Generation holds generation_config.json's settings (or the defaults).
	Generation generate.Config

	mu sync.Mutex
}

// Open loads a checkpoint folder, or a model name resolved through the
// Hugging Face cache (downloading it when needed).
func Open(ctx context.Context, ref string, o Options) (*Engine, error) {
	warn := o.Warn
	if warn == nil {
		warn = func(s string) { fmt.Fprintln(os.Stderr, "warning:", s) }
	}
	dir, err := hub.Resolve(ctx, ref, o.Hub)
	if err != nil {
		return nil, err
	}
	ops := o.Backend
	if ops == nil {
		if ops, err = o.OpenBackend(warn); err != nil {
			return nil, err
		}
	}
	e := &Engine{Dir: dir, Name: ref}
	if e.Fingerprint, err = Fingerprint(dir); err != nil {
		return nil, err
	}
	if e.Model, err = blip2.Load(dir, ops); err != nil {
		return nil, err
	}
	if e.Retrieval, err = e.Model.Retrieval(); err != nil {
		e.Model.Close()
		return nil, err
	}
	if e.Tokenizer, err = tokenizer.LoadDir(dir); err != nil {
		e.Model.Close()
		return nil, err
	}
	cfg := e.Model.Config
	if e.Model.LM != nil {
		image := -1
		if cfg.ImageTokenIndex != nil {
			image = *cfg.ImageTokenIndex
		} else if id, ok := e.Tokenizer.TokenToID("<image>"); ok {
			image = id
		}
		nq := cfg.NumQueryTokens
		if cfg.ImageTokenIndex == nil {
			nq = 0 // older checkpoints: the model puts the queries before the prompt
		}
		e.Processor = processor.New(e.Tokenizer, nq, image)
	}
	icfg, err := imageConfig(dir, cfg.Vision.ImageSize)
	if err != nil {
		e.Model.Close()
		return nil, err
	}
	if e.Images, err = imageproc.New(icfg, imageproc.Options{MaxPixels: o.MaxPixels}); err != nil {
		e.Model.Close()
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "generation_config.json")); err == nil {
		if e.Generation, err = generate.LoadConfig(dir); err != nil {
			e.Model.Close()
			return nil, err
		}
	} else {
		eos := cfg.Text.EOSTokenID
		pad := cfg.Text.PadTokenID
		e.Generation = generate.Config{EOSTokenID: generate.TokenIDs{eos}, PadTokenID: &pad}
	}
	return e, nil
}

// RegisterFlags adds --backend (the fp32 BLAS) and --dtype (the weight
// dtype) to fs, setting o's BLASKind and DType.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.BLASKind, "backend", o.BLASKind, "fp32 BLAS: auto, go or openblas (default $"+blas.EnvBackend+", else auto)")
	if o.DType == "" {
		o.DType = nn.DTypeAuto
	}
	fs.StringVar(&o.DType, "dtype", o.DType, "weight dtype: auto (bf16 where the CPU has AVX512-BF16 or AMX, else fp32), bf16 or fp32")
}

// OpenBackend builds the CPU ops o describes (ignoring o.Backend), passing
// each fallback's one-line warning to warn.
func (o Options) OpenBackend(warn func(string)) (nn.Ops, error) {
	b := o.BLAS
	if b == nil && o.BLASKind != "" {
		var w string
		var err error
		if b, w, err = blas.Load(blas.Options{Backend: blas.Kind(o.BLASKind)}); err != nil {
			return nil, err
		}
		if w != "" {
			warn(w)
		}
	}
	ops, warnings, err := nn.OpenCPU(nn.BackendOptions{BLAS: b, DType: o.DType})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		warn(w)
	}
	return ops, nil
}

// Close releases the weights.
func (e *Engine) Close() error { return e.Model.Close() }

// Caption is the generated text of one image: one entry per returned
// sequence.
type Caption struct {
	IDs   [][]int
	Texts []string
}

// Caption generates captions for n images (pixels [n,3,H,W]) continuing
// prompt (empty: a plain caption). gen overrides the checkpoint's
// generation defaults. A cancelled ctx stops the model between layers or
// decode steps with ctx's error.
func (e *Engine) Caption(ctx context.Context, pixels []float32, n int, prompt string, gen generate.Config) ([]Caption, error) {
	caps, _, err := e.run(ctx, pixels, repeat(prompt, n), gen, false)
	return caps, err
}

// CaptionAndEmbed captions n images and returns their image embedding
// (see ImageEmbedding) from one run of the vision encoder and Q-Former.
func (e *Engine) CaptionAndEmbed(ctx context.Context, pixels []float32, n int, prompt string, gen generate.Config) ([]Caption, []float32, error) {
	return e.run(ctx, pixels, repeat(prompt, n), gen, true)
}

// CaptionEach captions len(prompts) images, each continuing its own prompt
// (visual question answering over a dataset). The rows are decoded as one
// batch; each gets the tokens it would get alone. With embed set it also
// returns the image embedding.
func (e *Engine) CaptionEach(ctx context.Context, pixels []float32, prompts []string, gen generate.Config, embed bool) ([]Caption, []float32, error) {
	return e.run(ctx, pixels, prompts, gen, embed)
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// run encodes the images once, captions them and, when embed is set, also
// returns their image embedding.
func (e *Engine) run(ctx context.Context, pixels []float32, prompts []string, gen generate.Config, embed bool) ([]Caption, []float32, error) {
	if e.Model.LM == nil {
		return nil, nil, fmt.Errorf("engine: %s has no language model to caption with", e.Dir)
	}
	n := len(prompts)
	ids, mask, err := e.prompts(prompts)
	if err != nil {
		return nil, nil, err
	}
	cfg := e.Generation.Merge(gen)
	e.mu.Lock()
	defer e.mu.Unlock()
	img, err := e.Model.EncodeImages(ctx, pixels, n)
	if err != nil {
		return nil, nil, err
	}
	var emb []float32
	if embed {
		if emb, err = e.embedEncoded(ctx, img, pixels, n); err != nil {
			return nil, nil, err
		}
	}
	seqs, err := e.Model.Generate(ctx, img, ids, mask, cfg)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Caption, n)
	for i, s := range seqs {
		for _, ids := range s {
			out[i].IDs = append(out[i].IDs, ids)
			out[i].Texts = append(out[i].Texts, e.Tokenizer.Decode(ids, true))
		}
	}
	return out, emb, nil
}

// prompts builds the language model's input ids and attention mask for
// one prompt per image, left-padded to the longest as the reference
// processor pads a batch. A decoder-only model without any prompt starts
// from the image tokens and BOS.
func (e *Engine) prompts(prompts []string) (ids, mask [][]int, err error) {
	allEmpty := true
	for _, p := range prompts {
		allEmpty = allEmpty && p == ""
	}
	if allEmpty && e.Model.Config.DecoderOnly() {
		row := e.Processor.ImageOnly()
		for range prompts {
			ids = append(ids, row)
			mask = append(mask, ones(len(row)))
		}
		return ids, mask, nil
	}
	b, err := e.Processor.Encode(prompts, processor.Options{PadSide: tokenizer.Left})
	if err != nil {
		return nil, nil, fmt.Errorf("engine: prompts %q: %w", prompts, err)
	}
	return b.InputIDs, b.AttentionMask, nil
}

func ones(n int) []int {
	m := make([]int, n)
	for j := range m {
		m[j] = 1
	}
	return m
}

// imageConfig reads the checkpoint's image processor settings. A checkpoint
// saved without a processor file (as a retrieval model alone is) gets
// BlipImageProcessor's defaults at the vision encoder's size.
func imageConfig(dir string, imageSize int) (imageproc.Config, error) {
	cfg, err := imageproc.LoadConfig(dir)
	if err == nil {
		return cfg, nil
	}
	for _, name := range []string{"processor_config.json", "preprocessor_config.json"} {
		if _, statErr := os.Stat(filepath.Join(dir, name)); statErr == nil {
			return imageproc.Config{}, err
		}
	}
	cfg = imageproc.DefaultConfig()
	cfg.Size = imageproc.Size{Height: imageSize, Width: imageSize}
	return cfg, nil
}
