package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// dirConfig is the part of tokenizer_config.json the tokenizer needs.
type dirConfig struct {
	BOS, EOS, PAD, UNK *string
	// AddBOS and AddEOS, when either is set, replace the tokenizer.json
	// post-processor with "[bos] $A [eos]" (transformers TokenizersBackend).
	AddBOS, AddEOS     *bool
	CleanUpSpaces      bool
	AddPrefixSpace     bool
	AddedTokensDecoder map[int]AddedToken
	// Extra names the additional special tokens.
	Extra []string
}

// tokenName decodes a special token given as "text" or {"content": "text", ...}.
func tokenName(raw json.RawMessage) (*string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return &s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("want a string or {\"content\": ...}: %w", err)
	}
	return &obj.Content, nil
}

func parseDirConfig(data []byte) (dirConfig, error) {
	var raw struct {
		BOS                json.RawMessage           `json:"bos_token"`
		EOS                json.RawMessage           `json:"eos_token"`
		PAD                json.RawMessage           `json:"pad_token"`
		UNK                json.RawMessage           `json:"unk_token"`
		AddBOS             *bool                     `json:"add_bos_token"`
		AddEOS             *bool                     `json:"add_eos_token"`
		CleanUp            *bool                     `json:"clean_up_tokenization_spaces"`
		AddPrefixSpace     *bool                     `json:"add_prefix_space"`
		AddedTokensDecoder map[string]addedTokenJSON `json:"added_tokens_decoder"`
		Additional         []json.RawMessage         `json:"additional_special_tokens"`
		Extra              json.RawMessage           `json:"extra_special_tokens"`
	}
	var c dirConfig
	if err := json.Unmarshal(data, &raw); err != nil {
		return c, err
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  **string
	}{{"bos_token", raw.BOS, &c.BOS}, {"eos_token", raw.EOS, &c.EOS}, {"pad_token", raw.PAD, &c.PAD}, {"unk_token", raw.UNK, &c.UNK}} {
		v, err := tokenName(f.raw)
		if err != nil {
			return c, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = v
	}
	c.AddBOS, c.AddEOS = raw.AddBOS, raw.AddEOS
	c.CleanUpSpaces = raw.CleanUp != nil && *raw.CleanUp
	c.AddPrefixSpace = raw.AddPrefixSpace != nil && *raw.AddPrefixSpace
	c.AddedTokensDecoder = make(map[int]AddedToken, len(raw.AddedTokensDecoder))
	for key, a := range raw.AddedTokensDecoder {
		id, err := strconv.Atoi(key)
		if err != nil || id < 0 || a.Content == "" {
			return c, fmt.Errorf("added_tokens_decoder[%q]: want a non-negative id and content", key)
		}
		c.AddedTokensDecoder[id] = AddedToken{ID: id, Content: a.Content, Special: a.Special, LStrip: a.LStrip,
			RStrip: a.RStrip, SingleWord: a.SingleWord, Normalized: a.Normalized}
	}
	extra := raw.Additional
	if !isNull(raw.Extra) {
		var list []json.RawMessage
		if err := json.Unmarshal(raw.Extra, &list); err == nil {
			extra = append(extra, list...)
		}
	}
	for i, e := range extra {
		v, err := tokenName(e)
		if err != nil {
			return c, fmt.Errorf("additional special token %d: %w", i, err)
		}
		if v != nil {
			c.Extra = append(c.Extra, *v)
		}
	}
	return c, nil
}

// LoadDir loads the tokenizer of a checkpoint folder: tokenizer.json, or
// else vocab.json + merges.txt (GPT-2 style byte-level BPE), with the
// special tokens and settings of tokenizer_config.json when present.
func LoadDir(dir string) (*Tokenizer, error) {
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	var cfg dirConfig
	data, err := os.ReadFile(cfgPath)
	switch {
	case err == nil:
		if cfg, err = parseDirConfig(data); err != nil {
			return nil, fmt.Errorf("tokenizer %s: %w", cfgPath, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	jsonPath := filepath.Join(dir, "tokenizer.json")
	var t *Tokenizer
	if _, statErr := os.Stat(jsonPath); statErr == nil {
		if t, err = LoadFile(jsonPath); err != nil {
			return nil, err
		}
	} else {
		vocabPath, mergesPath := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
		if _, err := os.Stat(vocabPath); err != nil {
			return nil, fmt.Errorf("tokenizer %s: missing, and no vocab.json + merges.txt in %s", jsonPath, dir)
		}
		if t, err = loadVocabMerges(vocabPath, mergesPath, cfg.AddPrefixSpace); err != nil {
			return nil, err
		}
		if cfg.UNK == nil && cfg.BOS == nil && cfg.EOS == nil {
			gpt2 := "<|endoftext|>" // GPT2Tokenizer's defaults
			cfg.UNK, cfg.BOS, cfg.EOS = &gpt2, &gpt2, &gpt2
		}
	}
	if err := t.configure(cfg); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", cfgPath, err)
	}
	return t, nil
}

// LoadVocabMerges loads a GPT-2 byte-level BPE from vocab.json (also named
// encoder.json) and merges.txt (vocab.bpe), with GPT-2's "<|endoftext|>" as
// its special token when the vocabulary has it.
func LoadVocabMerges(vocabPath, mergesPath string) (*Tokenizer, error) {
	t, err := loadVocabMerges(vocabPath, mergesPath, false)
	if err != nil {
		return nil, err
	}
	gpt2 := "<|endoftext|>"
	if err := t.configure(dirConfig{UNK: &gpt2, BOS: &gpt2, EOS: &gpt2}); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", vocabPath, err)
	}
	return t, nil
}

func loadVocabMerges(vocabPath, mergesPath string, addPrefixSpace bool) (*Tokenizer, error) {
	data, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", vocabPath, err)
	}
	if err := checkVocab(vocab); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", vocabPath, err)
	}
	data, err = os.ReadFile(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var merges [][2]string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || (i == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		a, b, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("tokenizer %s: line %d %q: want two tokens separated by a space", mergesPath, i+1, line)
		}
		merges = append(merges, [2]string{a, b})
	}
	m, err := newBPE(vocab, merges, bpeModel{})
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", mergesPath, err)
	}
	table := newByteTable()
	return &Tokenizer{
		preTokenizer: byteLevelPreTokenizer{addPrefixSpace: addPrefixSpace, useRegex: true, table: table},
		model:        m,
		decoder:      byteLevelDecoder{table: table},
		special:      SpecialTokens{BOS: -1, EOS: -1, PAD: -1, UNK: -1},
	}, nil
}

// configure applies tokenizer_config.json: missing added tokens and named
// special tokens become special added tokens, the special ids are resolved,
// and add_bos_token/add_eos_token rebuild the post-processor.
func (t *Tokenizer) configure(cfg dirConfig) error {
	added := append([]AddedToken(nil), t.added...)
	have := make(map[string]bool, len(added))
	for _, a := range added {
		have[a.Content] = true
	}
	ids := make([]int, 0, len(cfg.AddedTokensDecoder))
	for id := range cfg.AddedTokensDecoder {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		a := cfg.AddedTokensDecoder[id]
		if !have[a.Content] {
			added, have[a.Content] = append(added, a), true
		}
	}
	next := t.VocabSize()
	names := append([]*string{cfg.BOS, cfg.EOS, cfg.UNK, cfg.PAD}, stringPtrs(cfg.Extra)...)
	for _, name := range names {
		if name == nil || *name == "" || have[*name] {
			continue
		}
		id, ok := t.model.tokenToID(*name)
		if !ok {
			id, next = next, next+1
		}
		added, have[*name] = append(added, AddedToken{ID: id, Content: *name, Special: true}), true
	}
	t.setAddedTokens(added)

	lookup := func(name *string, dst *int) {
		if name == nil {
			return
		}
		if id, ok := t.TokenToID(*name); ok {
			*dst = id
		}
	}
	lookup(cfg.BOS, &t.special.BOS)
	lookup(cfg.EOS, &t.special.EOS)
	lookup(cfg.PAD, &t.special.PAD)
	lookup(cfg.UNK, &t.special.UNK)
	t.cleanUpSpaces = cfg.CleanUpSpaces

	if cfg.AddBOS != nil || cfg.AddEOS != nil || t.postProcessor == nil {
		var p templateProcessor
		if cfg.AddBOS != nil && *cfg.AddBOS {
			if t.special.BOS < 0 {
				return fmt.Errorf("add_bos_token is set but bos_token is missing")
			}
			p.single = append(p.single, templatePiece{special: &specialPiece{ids: []int{t.special.BOS}, tokens: []string{*cfg.BOS}}})
		}
		p.single = append(p.single, templatePiece{sequence: true})
		if cfg.AddEOS != nil && *cfg.AddEOS {
			if t.special.EOS < 0 {
				return fmt.Errorf("add_eos_token is set but eos_token is missing")
			}
			p.single = append(p.single, templatePiece{special: &specialPiece{ids: []int{t.special.EOS}, tokens: []string{*cfg.EOS}}})
		}
		t.postProcessor = p
	}
	return nil
}

func stringPtrs(s []string) []*string {
	out := make([]*string, len(s))
	for i := range s {
		out[i] = &s[i]
	}
	return out
}
