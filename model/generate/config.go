package generate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// ConfigFile is the name of the generation settings file in a checkpoint folder.
const ConfigFile = "generation_config.json"

// Config holds generation settings under the keys of Hugging Face's
// generation_config.json. A nil field (or an empty EOSTokenID) means "not set":
// the reference default then applies (see the field comments), and Merge lets
// a set field override it.
type Config struct {
	// MaxNewTokens caps the number of generated tokens; it takes precedence over MaxLength.
	MaxNewTokens *int `json:"max_new_tokens,omitempty"`
	// MaxLength caps the total length, prompt included. When neither it nor
	// MaxNewTokens is set, 20 new tokens are generated.
	MaxLength *int `json:"max_length,omitempty"`
	// MinNewTokens masks EOS until this many tokens were generated; it takes precedence over MinLength.
	MinNewTokens *int `json:"min_new_tokens,omitempty"`
	// MinLength masks EOS while the total length, prompt included, is below it (default 0).
	MinLength *int `json:"min_length,omitempty"`
	// DoSample draws tokens at random instead of taking the best (default false).
	DoSample *bool `json:"do_sample,omitempty"`
	// Temperature divides the scores before sampling (default 1, only with DoSample).
	Temperature *float64 `json:"temperature,omitempty"`
	// TopK keeps only the K best tokens before sampling (default 50, 0 disables; only with DoSample).
	TopK *int `json:"top_k,omitempty"`
	// TopP keeps the smallest set of best tokens whose probability reaches TopP (default 1; only with DoSample).
	TopP *float64 `json:"top_p,omitempty"`
	// NumBeams selects beam search when above 1 (default 1).
	NumBeams *int `json:"num_beams,omitempty"`
	// NumReturnSequences is the number of sequences returned per input (default 1).
	NumReturnSequences *int `json:"num_return_sequences,omitempty"`
	// LengthPenalty is the exponent of the generated length that divides a finished beam's score (default 1).
	LengthPenalty *float64 `json:"length_penalty,omitempty"`
	// EarlyStopping is beam search's stopping rule (default false).
	EarlyStopping *EarlyStopping `json:"early_stopping,omitempty"`
	// RepetitionPenalty penalises tokens already in the sequence, prompt included (default 1 = off).
	RepetitionPenalty *float64 `json:"repetition_penalty,omitempty"`
	// NoRepeatNGramSize forbids repeating any n-gram of this size, prompt included (default 0 = off).
	NoRepeatNGramSize *int `json:"no_repeat_ngram_size,omitempty"`
	// BOSTokenID is the beginning-of-sequence token (informational here).
	BOSTokenID *int `json:"bos_token_id,omitempty"`
	// EOSTokenID lists the end-of-sequence tokens; JSON accepts one id or a list.
	EOSTokenID TokenIDs `json:"eos_token_id,omitempty"`
	// PadTokenID fills finished rows in Hugging Face's output tensor (defaults to the first EOS).
	PadTokenID *int `json:"pad_token_id,omitempty"`
	// DecoderStartTokenID starts an encoder-decoder model's decoder (the caller's prompt).
	DecoderStartTokenID *int `json:"decoder_start_token_id,omitempty"`
	// Seed seeds the PCG source used when sampling (not a Hugging Face key; default 0).
	Seed *uint64 `json:"seed,omitempty"`
}

// TokenIDs is a list of token ids that reads from JSON as one id, a list or null.
type TokenIDs []int

// UnmarshalJSON accepts an integer, a list of integers or null.
func (t *TokenIDs) UnmarshalJSON(data []byte) error {
	trimmed := bytes.TrimSpace(data)
	if bytes.Equal(trimmed, []byte("null")) {
		*t = nil
		return nil
	}
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var ids []int
		if err := json.Unmarshal(trimmed, &ids); err != nil {
			return fmt.Errorf("token id list: %w", err)
		}
		*t = ids
		return nil
	}
	var id int
	if err := json.Unmarshal(trimmed, &id); err != nil {
		return fmt.Errorf("token id: %w", err)
	}
	*t = TokenIDs{id}
	return nil
}

// EarlyStopping is beam search's stopping rule: "false", "true" or "never".
type EarlyStopping string

// The three stopping rules of Hugging Face beam search.
const (
	// EarlyStopHeuristic (early_stopping=false) stops a batch item once the best
	// running beam, scored at its current length, cannot beat the worst finished one.
	EarlyStopHeuristic EarlyStopping = "false"
	// EarlyStopWhenFull (early_stopping=true) stops a batch item as soon as num_beams hypotheses finished.
	EarlyStopWhenFull EarlyStopping = "true"
	// EarlyStopNever (early_stopping="never") is the heuristic, but with a positive
	// length penalty the best running beam is scored at the maximum length.
	EarlyStopNever EarlyStopping = "never"
)

// UnmarshalJSON accepts true, false or "never".
func (e *EarlyStopping) UnmarshalJSON(data []byte) error {
	switch string(bytes.TrimSpace(data)) {
	case "true", `"true"`:
		*e = EarlyStopWhenFull
	case "false", `"false"`:
		*e = EarlyStopHeuristic
	case `"never"`:
		*e = EarlyStopNever
	default:
		return fmt.Errorf("early_stopping must be true, false or \"never\", got %s", data)
	}
	return nil
}

// MarshalJSON writes true, false or "never", as generation_config.json does.
func (e EarlyStopping) MarshalJSON() ([]byte, error) {
	if e == EarlyStopNever {
		return []byte(`"never"`), nil
	}
	return []byte(string(e)), nil
}

// unsupportedKeys are generation_config.json keys this package does not
// implement, each with the values that leave generation unchanged. A file
// setting any other value is refused rather than silently decoded differently.
var unsupportedKeys = map[string][]string{
	"bad_words_ids":                    {"null"},
	"begin_suppress_tokens":            {"null"},
	"suppress_tokens":                  {"null"},
	"forced_bos_token_id":              {"null"},
	"forced_eos_token_id":              {"null"},
	"sequence_bias":                    {"null"},
	"exponential_decay_length_penalty": {"null"},
	"guidance_scale":                   {"null", "1", "1.0"},
	"min_p":                            {"null"},
	"top_h":                            {"null"},
	"typical_p":                        {"null", "1", "1.0"},
	"epsilon_cutoff":                   {"null", "0", "0.0"},
	"eta_cutoff":                       {"null", "0", "0.0"},
	"encoder_repetition_penalty":       {"null", "1", "1.0"},
	"encoder_no_repeat_ngram_size":     {"null", "0"},
	"num_beam_groups":                  {"null", "1"},
	"diversity_penalty":                {"null", "0", "0.0"},
	"penalty_alpha":                    {"null"},
	"dola_layers":                      {"null"},
	"constraints":                      {"null"},
	"force_words_ids":                  {"null"},
	"renormalize_logits":               {"null", "false"},
	"remove_invalid_values":            {"null", "false"},
	"watermarking_config":              {"null"},
	"stop_strings":                     {"null"},
	"max_time":                         {"null"},
}

// ParseConfig decodes generation_config.json content. Keys this package does
// not use are ignored, except those that would change the generated tokens
// (bad_words_ids, typical_p, ...), which are an error unless left neutral.
func ParseConfig(data []byte) (Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("generation config: %w", err)
	}
	for key, neutral := range unsupportedKeys {
		value, ok := raw[key]
		if !ok {
			continue
		}
		compact := string(bytes.TrimSpace(value))
		found := false
		for _, n := range neutral {
			found = found || compact == n
		}
		if !found {
			return Config{}, fmt.Errorf("generation config: %s=%s is not supported", key, compact)
		}
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("generation config: %w", err)
	}
	return c, nil
}

// LoadConfig reads dir/generation_config.json. A missing file is an error
// that matches fs.ErrNotExist.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("generation config %s: %w", path, err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Merge returns c with every field that o sets replacing c's value.
func (c Config) Merge(o Config) Config {
	mergePtr(&c.MaxNewTokens, o.MaxNewTokens)
	mergePtr(&c.MaxLength, o.MaxLength)
	mergePtr(&c.MinNewTokens, o.MinNewTokens)
	mergePtr(&c.MinLength, o.MinLength)
	mergePtr(&c.DoSample, o.DoSample)
	mergePtr(&c.Temperature, o.Temperature)
	mergePtr(&c.TopK, o.TopK)
	mergePtr(&c.TopP, o.TopP)
	mergePtr(&c.NumBeams, o.NumBeams)
	mergePtr(&c.NumReturnSequences, o.NumReturnSequences)
	mergePtr(&c.LengthPenalty, o.LengthPenalty)
	mergePtr(&c.EarlyStopping, o.EarlyStopping)
	mergePtr(&c.RepetitionPenalty, o.RepetitionPenalty)
	mergePtr(&c.NoRepeatNGramSize, o.NoRepeatNGramSize)
	mergePtr(&c.BOSTokenID, o.BOSTokenID)
	if len(o.EOSTokenID) > 0 {
		c.EOSTokenID = append(TokenIDs(nil), o.EOSTokenID...)
	}
	mergePtr(&c.PadTokenID, o.PadTokenID)
	mergePtr(&c.DecoderStartTokenID, o.DecoderStartTokenID)
	mergePtr(&c.Seed, o.Seed)
	return c
}

func mergePtr[T any](dst **T, src *T) {
	if src != nil {
		v := *src
		*dst = &v
	}
}

// Set overrides one setting by its generation_config.json key, for command-line
// flags such as --gen num_beams=3. The value is read as JSON; a bare word that
// is not JSON (never) is read as a string.
func (c *Config) Set(key, value string) error {
	value = strings.TrimSpace(value)
	if !json.Valid([]byte(value)) {
		quoted, err := json.Marshal(value)
		if err != nil {
			return fmt.Errorf("generation setting %s: %w", key, err)
		}
		value = string(quoted)
	}
	keyJSON, err := json.Marshal(key)
	if err != nil {
		return fmt.Errorf("generation setting %s: %w", key, err)
	}
	dec := json.NewDecoder(strings.NewReader("{" + string(keyJSON) + ":" + value + "}"))
	dec.DisallowUnknownFields()
	var o Config
	if err := dec.Decode(&o); err != nil {
		return fmt.Errorf("generation setting %s=%s: %w", key, value, err)
	}
	*c = c.Merge(o)
	return nil
}

// Int returns a pointer to v, for filling Config literals.
func Int(v int) *int { return &v }

// Float returns a pointer to v, for filling Config literals.
func Float(v float64) *float64 { return &v }

// Bool returns a pointer to v, for filling Config literals.
func Bool(v bool) *bool { return &v }

// EarlyStop returns a pointer to v, for filling Config literals.
func EarlyStop(v EarlyStopping) *EarlyStopping { return &v }

// Uint64 returns a pointer to v, for filling Config literals.
func Uint64(v uint64) *uint64 { return &v }

// FillToken is the id Hugging Face writes after a sequence's end in its
// rectangular output (see PadLikeHF), or -1 where it writes none:
// greedy and sampling write pad_token_id (the first EOS when pad is unset);
// beam search writes pad_token_id when it is set and non-zero, else the first
// EOS, and -1 without EOS (Python's `pad or eos[0] if eos is not None else -1`).
func (c Config) FillToken() int {
	beams := c.NumBeams != nil && *c.NumBeams > 1
	if beams {
		if len(c.EOSTokenID) == 0 {
			return -1
		}
		if c.PadTokenID != nil && *c.PadTokenID != 0 {
			return *c.PadTokenID
		}
		return c.EOSTokenID[0]
	}
	if c.PadTokenID != nil {
		return *c.PadTokenID
	}
	if len(c.EOSTokenID) > 0 {
		return c.EOSTokenID[0]
	}
	return -1
}

// settings is a Config resolved against the reference defaults for one call.
type settings struct {
	maxNew        int // tokens to generate at most, per row, relative to its prompt
	maxLength     int // absolute length cap when set explicitly, else -1
	minNew        int // when >= 0, EOS is masked until this many new tokens
	minLength     int // otherwise EOS is masked while the total length is below it
	doSample      bool
	temperature   float32
	topK          int
	topP          float64
	numBeams      int
	numReturn     int
	lengthPenalty float64
	earlyStopping EarlyStopping
	repetition    float32
	noRepeatNGram int
	eos           []int
	seed          uint64
}

// defaultNewTokens is what Hugging Face generates when no length is set
// (its global max_length default of 20, counted from the end of the prompt).
const defaultNewTokens = 20

// Validate checks the settings as generation would resolve them (ranges
// and combinations such as num_return_sequences against num_beams), so a
// command can refuse them before any work starts.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// WithLengthDefault returns c with max_new_tokens set to the reference
// default (20) when neither it nor max_length is set, so a record of the
// settings says how long the captions could be.
func (c Config) WithLengthDefault() Config {
	if c.MaxNewTokens == nil && c.MaxLength == nil {
		c.MaxNewTokens = Int(defaultNewTokens)
	}
	return c
}

func (c Config) resolve() (settings, error) {
	s := settings{
		maxNew:        defaultNewTokens,
		maxLength:     -1,
		minNew:        -1,
		temperature:   1,
		topP:          1,
		numBeams:      1,
		numReturn:     1,
		lengthPenalty: 1,
		earlyStopping: EarlyStopHeuristic,
		repetition:    1,
		eos:           append([]int(nil), c.EOSTokenID...),
	}
	switch {
	case c.MaxNewTokens != nil:
		if *c.MaxNewTokens <= 0 {
			return s, fmt.Errorf("max_new_tokens must be positive, got %d", *c.MaxNewTokens)
		}
		s.maxNew = *c.MaxNewTokens
	case c.MaxLength != nil:
		s.maxLength = *c.MaxLength
	}
	if c.MinNewTokens != nil {
		if *c.MinNewTokens < 0 {
			return s, fmt.Errorf("min_new_tokens must not be negative, got %d", *c.MinNewTokens)
		}
		s.minNew = *c.MinNewTokens
	} else if c.MinLength != nil {
		s.minLength = *c.MinLength
	}
	if c.DoSample != nil {
		s.doSample = *c.DoSample
	}
	if c.NumBeams != nil {
		if *c.NumBeams < 1 {
			return s, fmt.Errorf("num_beams must be at least 1, got %d", *c.NumBeams)
		}
		s.numBeams = *c.NumBeams
	}
	if c.NumReturnSequences != nil {
		if *c.NumReturnSequences < 1 {
			return s, fmt.Errorf("num_return_sequences must be at least 1, got %d", *c.NumReturnSequences)
		}
		s.numReturn = *c.NumReturnSequences
	}
	if s.numBeams == 1 && s.numReturn > 1 && !s.doSample {
		return s, fmt.Errorf("greedy search returns one sequence per input, got num_return_sequences=%d", s.numReturn)
	}
	if s.numBeams > 1 && s.numReturn > s.numBeams {
		return s, fmt.Errorf("num_return_sequences (%d) must not exceed num_beams (%d)", s.numReturn, s.numBeams)
	}
	if c.LengthPenalty != nil {
		s.lengthPenalty = *c.LengthPenalty
	}
	if c.EarlyStopping != nil {
		s.earlyStopping = *c.EarlyStopping
	}
	if c.RepetitionPenalty != nil {
		if !(*c.RepetitionPenalty > 0) {
			return s, fmt.Errorf("repetition_penalty must be positive, got %v", *c.RepetitionPenalty)
		}
		s.repetition = float32(*c.RepetitionPenalty)
	}
	if c.NoRepeatNGramSize != nil {
		s.noRepeatNGram = *c.NoRepeatNGramSize
	}
	if c.Seed != nil {
		s.seed = *c.Seed
	}
	if s.doSample {
		s.topK = 50
		if c.Temperature != nil {
			if !(*c.Temperature > 0) || math.IsInf(*c.Temperature, 0) {
				return s, fmt.Errorf("temperature must be a positive number when sampling, got %v", *c.Temperature)
			}
			s.temperature = float32(*c.Temperature)
		}
		if c.TopK != nil {
			if *c.TopK < 0 {
				return s, fmt.Errorf("top_k must not be negative, got %d", *c.TopK)
			}
			s.topK = *c.TopK
		}
		if c.TopP != nil {
			if *c.TopP < 0 || *c.TopP > 1 {
				return s, fmt.Errorf("top_p must be within [0, 1], got %v", *c.TopP)
			}
			s.topP = *c.TopP
		}
	}
	return s, nil
}

// limits are the resolved length bounds of one row.
type limits struct {
	promptLen int
	maxTotal  int // the row stops once its total length reaches this
	minTotal  int // EOS is masked while the total length is below this
}

func (s settings) limitsFor(promptLen int) (limits, error) {
	l := limits{promptLen: promptLen, maxTotal: promptLen + s.maxNew, minTotal: s.minLength}
	if s.maxLength >= 0 {
		l.maxTotal = s.maxLength
	}
	if s.minNew >= 0 {
		l.minTotal = promptLen + s.minNew
	}
	if l.maxTotal <= promptLen {
		return l, fmt.Errorf("prompt length %d leaves no room under max_length %d", promptLen, l.maxTotal)
	}
	return l, nil
}

// errNoRows reports a call without input rows.
var errNoRows = errors.New("generate: no input rows")
