package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// fileJSON is the layout of a Hugging Face tokenizer.json.
type fileJSON struct {
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	Model         json.RawMessage  `json:"model"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
}

type addedTokenJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// component is any typed part of tokenizer.json ({"type": ..., fields}).
type component map[string]json.RawMessage

// loader holds what parsing shares between components.
type loader struct {
	table *byteTable
}

func (l *loader) bytes() *byteTable {
	if l.table == nil {
		l.table = newByteTable()
	}
	return l.table
}

// LoadFile reads a tokenizer.json file.
func LoadFile(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, nil
}

// Load parses the contents of a tokenizer.json. Special token ids other than
// the model's unknown token are not known from this file alone (see LoadDir).
func Load(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if isNull(f.Model) {
		return nil, fmt.Errorf("model: missing")
	}
	var l loader
	t := &Tokenizer{special: SpecialTokens{BOS: -1, EOS: -1, PAD: -1, UNK: -1}}
	var err error
	if t.normalizer, err = l.normalizer(f.Normalizer); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	if t.preTokenizer, err = l.preTokenizer(f.PreTokenizer); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	var unk string
	if t.model, unk, err = l.model(f.Model); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if t.postProcessor, err = l.postProcessor(f.PostProcessor); err != nil {
		return nil, fmt.Errorf("post_processor: %w", err)
	}
	if t.decoder, err = l.decoder(f.Decoder); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	added := make([]AddedToken, len(f.AddedTokens))
	for i, a := range f.AddedTokens {
		if a.Content == "" {
			return nil, fmt.Errorf("added_tokens[%d]: empty content", i)
		}
		if a.ID < 0 {
			return nil, fmt.Errorf("added_tokens[%d] %q: negative id %d", i, a.Content, a.ID)
		}
		added[i] = AddedToken{ID: a.ID, Content: a.Content, Special: a.Special, LStrip: a.LStrip,
			RStrip: a.RStrip, SingleWord: a.SingleWord, Normalized: a.Normalized}
	}
	t.setAddedTokens(added)
	if unk != "" {
		if id, ok := t.TokenToID(unk); ok {
			t.special.UNK = id
		}
	}
	return t, nil
}

// setAddedTokens installs the added tokens and builds their matchers.
func (t *Tokenizer) setAddedTokens(added []AddedToken) {
	t.added = added
	t.addedByContent = make(map[string]int, len(added))
	t.addedByID = make(map[int]int, len(added))
	var raw, normd []AddedToken
	var rawPat, normPat [][]rune
	for i, a := range added {
		t.addedByContent[a.Content] = i
		t.addedByID[a.ID] = i
		if a.Normalized {
			p := []rune(a.Content)
			if t.normalizer != nil {
				p = t.normalizer.normalize(newSpan(p, 0)).text
			}
			normd, normPat = append(normd, a), append(normPat, p)
		} else {
			raw, rawPat = append(raw, a), append(rawPat, []rune(a.Content))
		}
	}
	t.rawMatcher = newAddedMatcher(raw, rawPat)
	t.normMatcher = newAddedMatcher(normd, normPat)
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// parseComponent decodes a typed component; a missing type is "".
func parseComponent(raw json.RawMessage) (component, string, error) {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, "", err
	}
	var typ string
	if t, ok := c["type"]; ok {
		if err := json.Unmarshal(t, &typ); err != nil {
			return nil, "", fmt.Errorf("type: %w", err)
		}
	}
	return c, typ, nil
}

// field decodes c[name] into v when present and not null; it reports whether it was.
func (c component) field(name string, v any) (bool, error) {
	raw, ok := c[name]
	if !ok || isNull(raw) {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	return true, nil
}

// fields decodes several optional fields, stopping at the first error.
func (c component) fields(pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, err := c.field(pairs[i].(string), pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// list decodes c[name] as a list of components.
// sequence loads each component listed under key with load, leaving out
// null ones.
func sequence[T any](c component, key string, load func(json.RawMessage) (T, error)) ([]T, error) {
	items, err := c.list(key)
	if err != nil {
		return nil, err
	}
	var out []T
	for i, item := range items {
		v, err := load(item)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", key, i, err)
		}
		if any(v) != nil {
			out = append(out, v)
		}
	}
	return out, nil
}

func (c component) list(name string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	if _, err := c.field(name, &items); err != nil {
		return nil, err
	}
	return items, nil
}

// pattern decodes a {"String": s} or {"Regex": r} pattern.
func (c component) pattern(name string) (pattern, error) {
	var p struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	}
	ok, err := c.field(name, &p)
	if err != nil {
		return nil, err
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("%s: missing", name)
	case p.String != nil:
		return literalPattern([]rune(*p.String)), nil
	case p.Regex != nil:
		re, err := newRegexPattern(*p.Regex)
		if err != nil {
			return nil, fmt.Errorf("%s: regex %q: %w", name, *p.Regex, err)
		}
		return re, nil
	}
	return nil, fmt.Errorf("%s: neither String nor Regex", name)
}

func (l *loader) normalizer(raw json.RawMessage) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	c, typ, err := parseComponent(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		seq, err := sequence(c, "normalizers", l.normalizer)
		return sequenceNormalizer(seq), err
	case "NFC":
		return unicodeNormalizer{norm.NFC}, nil
	case "NFD":
		return unicodeNormalizer{norm.NFD}, nil
	case "NFKC":
		return unicodeNormalizer{norm.NFKC}, nil
	case "NFKD":
		return unicodeNormalizer{norm.NFKD}, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "StripAccents":
		return stripAccentsNormalizer{}, nil
	case "BertNormalizer":
		n := bertNormalizer{cleanText: true, handleChineseChars: true, lowercase: true}
		var strip *bool
		if err := c.fields("clean_text", &n.cleanText, "handle_chinese_chars", &n.handleChineseChars,
			"lowercase", &n.lowercase, "strip_accents", &strip); err != nil {
			return nil, err
		}
		// A null strip_accents follows lowercase, as in BERT.
		n.stripAccents = n.lowercase
		if strip != nil {
			n.stripAccents = *strip
		}
		return n, nil
	case "Replace":
		p, err := c.pattern("pattern")
		if err != nil {
			return nil, err
		}
		var content string
		if err := c.fields("content", &content); err != nil {
			return nil, err
		}
		return replaceNormalizer{pattern: p, content: []rune(content)}, nil
	case "Prepend":
		var prefix string
		if err := c.fields("prepend", &prefix); err != nil {
			return nil, err
		}
		return prependNormalizer{prefix: []rune(prefix)}, nil
	case "Strip":
		n := stripNormalizer{left: true, right: true}
		if err := c.fields("strip_left", &n.left, "strip_right", &n.right); err != nil {
			return nil, err
		}
		return n, nil
	case "Precompiled":
		var charsmap string
		if err := c.fields("precompiled_charsmap", &charsmap); err != nil {
			return nil, err
		}
		return newPrecompiled(charsmap)
	}
	return nil, fmt.Errorf("unsupported type %q", typ)
}

func parseBehavior(c component) (splitBehavior, error) {
	var name string
	if err := c.fields("behavior", &name); err != nil {
		return 0, err
	}
	switch name {
	case "Removed":
		return splitRemoved, nil
	case "Isolated", "":
		return splitIsolated, nil
	case "MergedWithPrevious":
		return splitMergedWithPrevious, nil
	case "MergedWithNext":
		return splitMergedWithNext, nil
	case "Contiguous":
		return splitContiguous, nil
	}
	return 0, fmt.Errorf("behavior: unknown %q", name)
}

// metaspaceSettings reads replacement and prepend scheme (or the older
// add_prefix_space flag).
func metaspaceSettings(c component) (rune, prependScheme, error) {
	repl := "▁"
	var scheme string
	addPrefix := true
	if err := c.fields("replacement", &repl, "prepend_scheme", &scheme, "add_prefix_space", &addPrefix); err != nil {
		return 0, 0, err
	}
	rs := []rune(repl)
	if len(rs) != 1 {
		return 0, 0, fmt.Errorf("replacement %q: want one character", repl)
	}
	switch scheme {
	case "always":
		return rs[0], prependAlways, nil
	case "first":
		return rs[0], prependFirst, nil
	case "never":
		return rs[0], prependNever, nil
	case "":
		if addPrefix {
			return rs[0], prependAlways, nil
		}
		return rs[0], prependNever, nil
	}
	return 0, 0, fmt.Errorf("prepend_scheme: unknown %q", scheme)
}

func (l *loader) preTokenizer(raw json.RawMessage) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	c, typ, err := parseComponent(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		seq, err := sequence(c, "pretokenizers", l.preTokenizer)
		return sequencePreTokenizer(seq), err
	case "ByteLevel":
		p := byteLevelPreTokenizer{useRegex: true, table: l.bytes()}
		if err := c.fields("add_prefix_space", &p.addPrefixSpace, "use_regex", &p.useRegex); err != nil {
			return nil, err
		}
		return p, nil
	case "Metaspace":
		repl, scheme, err := metaspaceSettings(c)
		if err != nil {
			return nil, err
		}
		p := metaspacePreTokenizer{replacement: repl, prepend: scheme, split: true}
		if err := c.fields("split", &p.split); err != nil {
			return nil, err
		}
		return p, nil
	case "BertPreTokenizer":
		return bertPreTokenizer{}, nil
	case "Whitespace":
		return whitespacePreTokenizer{}, nil
	case "WhitespaceSplit":
		return whitespaceSplitPreTokenizer{}, nil
	case "Punctuation":
		b, err := parseBehavior(c)
		if err != nil {
			return nil, err
		}
		return punctuationPreTokenizer{behavior: b}, nil
	case "Digits":
		var p digitsPreTokenizer
		if err := c.fields("individual_digits", &p.individual); err != nil {
			return nil, err
		}
		return p, nil
	case "Split":
		pat, err := c.pattern("pattern")
		if err != nil {
			return nil, err
		}
		b, err := parseBehavior(c)
		if err != nil {
			return nil, err
		}
		p := splitPreTokenizer{pattern: pat, behavior: b}
		if err := c.fields("invert", &p.invert); err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("unsupported type %q", typ)
}

// model parses the model and returns the name of its unknown token ("" if none).
func (l *loader) model(raw json.RawMessage) (model, string, error) {
	c, typ, err := parseComponent(raw)
	if err != nil {
		return nil, "", err
	}
	if typ == "" { // older files leave the type out
		_, hasMerges := c["merges"]
		_, hasMaxChars := c["max_input_chars_per_word"]
		_, hasUnkID := c["unk_id"]
		switch {
		case hasMerges:
			typ = "BPE"
		case hasMaxChars:
			typ = "WordPiece"
		case hasUnkID:
			typ = "Unigram"
		}
	}
	switch typ {
	case "BPE":
		return bpeFromJSON(c)
	case "Unigram":
		return unigramFromJSON(c)
	case "WordPiece":
		var vocab map[string]int
		m := wordPieceModel{unkToken: "[UNK]", prefix: "##", maxChars: 100}
		if err := c.fields("vocab", &vocab, "unk_token", &m.unkToken,
			"continuing_subword_prefix", &m.prefix, "max_input_chars_per_word", &m.maxChars); err != nil {
			return nil, "", err
		}
		if err := checkVocab(vocab); err != nil {
			return nil, "", err
		}
		m.vocabulary = newVocabulary(vocab)
		return &m, m.unkToken, nil
	case "WordLevel":
		var vocab map[string]int
		m := wordLevelModel{}
		if err := c.fields("vocab", &vocab, "unk_token", &m.unkToken); err != nil {
			return nil, "", err
		}
		if err := checkVocab(vocab); err != nil {
			return nil, "", err
		}
		m.vocabulary = newVocabulary(vocab)
		return &m, m.unkToken, nil
	}
	return nil, "", fmt.Errorf("unsupported type %q", typ)
}

func checkVocab(vocab map[string]int) error {
	if len(vocab) == 0 {
		return fmt.Errorf("vocab: empty")
	}
	for tok, id := range vocab {
		if id < 0 {
			return fmt.Errorf("vocab: token %q has negative id %d", tok, id)
		}
	}
	return nil
}

func bpeFromJSON(c component) (model, string, error) {
	var vocab map[string]int
	var merges []json.RawMessage
	var m bpeModel
	if err := c.fields("vocab", &vocab, "merges", &merges, "unk_token", &m.unkToken,
		"continuing_subword_prefix", &m.prefix, "end_of_word_suffix", &m.suffix,
		"fuse_unk", &m.fuseUnk, "byte_fallback", &m.byteFallback, "ignore_merges", &m.ignoreMerges); err != nil {
		return nil, "", err
	}
	if err := checkVocab(vocab); err != nil {
		return nil, "", err
	}
	pairs := make([][2]string, len(merges))
	for i, raw := range merges {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok {
				return nil, "", fmt.Errorf("merges[%d] %q: want two tokens separated by a space", i, s)
			}
			pairs[i] = [2]string{a, b}
			continue
		}
		var pair []string
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
			return nil, "", fmt.Errorf("merges[%d]: want \"a b\" or [\"a\", \"b\"]", i)
		}
		pairs[i] = [2]string{pair[0], pair[1]}
	}
	model, err := newBPE(vocab, pairs, m)
	if err != nil {
		return nil, "", err
	}
	return model, m.unkToken, nil
}

func unigramFromJSON(c component) (model, string, error) {
	var vocab [][2]json.RawMessage
	unkID := -1
	var byteFallback bool
	if err := c.fields("vocab", &vocab, "unk_id", &unkID, "byte_fallback", &byteFallback); err != nil {
		return nil, "", err
	}
	if len(vocab) == 0 {
		return nil, "", fmt.Errorf("vocab: empty")
	}
	pieces := make([]string, len(vocab))
	scores := make([]float64, len(vocab))
	for i, entry := range vocab {
		if err := json.Unmarshal(entry[0], &pieces[i]); err != nil {
			return nil, "", fmt.Errorf("vocab[%d] piece: %w", i, err)
		}
		if err := json.Unmarshal(entry[1], &scores[i]); err != nil {
			return nil, "", fmt.Errorf("vocab[%d] score: %w", i, err)
		}
	}
	m, err := newUnigram(pieces, scores, unkID, byteFallback)
	if err != nil {
		return nil, "", err
	}
	unk := ""
	if unkID >= 0 {
		unk = pieces[unkID]
	}
	return m, unk, nil
}

// tokenRef decodes a ["token", id] pair as BertProcessing/RobertaProcessing store it.
func tokenRef(c component, name string) (*specialPiece, error) {
	var pair [2]json.RawMessage
	if ok, err := c.field(name, &pair); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s: missing", name)
		}
		return nil, err
	}
	var tok string
	var id int
	if err := json.Unmarshal(pair[0], &tok); err != nil {
		return nil, fmt.Errorf("%s token: %w", name, err)
	}
	if err := json.Unmarshal(pair[1], &id); err != nil {
		return nil, fmt.Errorf("%s id: %w", name, err)
	}
	return &specialPiece{ids: []int{id}, tokens: []string{tok}}, nil
}

func (l *loader) postProcessor(raw json.RawMessage) (postProcessor, error) {
	if isNull(raw) {
		return nil, nil
	}
	c, typ, err := parseComponent(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "TemplateProcessing":
		return templateFromJSON(c)
	case "BertProcessing":
		cls, err := tokenRef(c, "cls")
		if err != nil {
			return nil, err
		}
		sep, err := tokenRef(c, "sep")
		if err != nil {
			return nil, err
		}
		return templateProcessor{single: []templatePiece{{special: cls}, {sequence: true}, {special: sep}}}, nil
	case "RobertaProcessing":
		cls, err := tokenRef(c, "cls")
		if err != nil {
			return nil, err
		}
		sep, err := tokenRef(c, "sep")
		if err != nil {
			return nil, err
		}
		trim := byteLevelProcessor{trimOffsets: true, addPrefixSpace: true, table: l.bytes()}
		if err := c.fields("trim_offsets", &trim.trimOffsets, "add_prefix_space", &trim.addPrefixSpace); err != nil {
			return nil, err
		}
		return sequenceProcessor{trim, templateProcessor{single: []templatePiece{{special: cls}, {sequence: true}, {special: sep}}}}, nil
	case "ByteLevel":
		p := byteLevelProcessor{trimOffsets: true, table: l.bytes()}
		if err := c.fields("trim_offsets", &p.trimOffsets, "add_prefix_space", &p.addPrefixSpace); err != nil {
			return nil, err
		}
		return p, nil
	case "Sequence":
		seq, err := sequence(c, "processors", l.postProcessor)
		return sequenceProcessor(seq), err
	}
	return nil, fmt.Errorf("unsupported type %q", typ)
}

func templateFromJSON(c component) (postProcessor, error) {
	var single []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	}
	var specials map[string]struct {
		IDs    []int    `json:"ids"`
		Tokens []string `json:"tokens"`
	}
	if err := c.fields("single", &single, "special_tokens", &specials); err != nil {
		return nil, err
	}
	var p templateProcessor
	for i, piece := range single {
		switch {
		case piece.Sequence != nil:
			p.single = append(p.single, templatePiece{sequence: true})
		case piece.SpecialToken != nil:
			sp, ok := specials[piece.SpecialToken.ID]
			if !ok {
				return nil, fmt.Errorf("single[%d]: special token %q is not in special_tokens", i, piece.SpecialToken.ID)
			}
			if len(sp.IDs) != len(sp.Tokens) {
				return nil, fmt.Errorf("special_tokens %q: %d ids but %d tokens", piece.SpecialToken.ID, len(sp.IDs), len(sp.Tokens))
			}
			p.single = append(p.single, templatePiece{special: &specialPiece{ids: sp.IDs, tokens: sp.Tokens}})
		default:
			return nil, fmt.Errorf("single[%d]: neither SpecialToken nor Sequence", i)
		}
	}
	return p, nil
}

func (l *loader) decoder(raw json.RawMessage) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	c, typ, err := parseComponent(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		seq, err := sequence(c, "decoders", l.decoder)
		return sequenceDecoder(seq), err
	case "ByteLevel":
		return byteLevelDecoder{table: l.bytes()}, nil
	case "Metaspace":
		repl, scheme, err := metaspaceSettings(c)
		if err != nil {
			return nil, err
		}
		return metaspaceDecoder{replacement: repl, prepend: scheme}, nil
	case "WordPiece":
		d := wordPieceDecoder{prefix: "##", cleanup: true}
		if err := c.fields("prefix", &d.prefix, "cleanup", &d.cleanup); err != nil {
			return nil, err
		}
		return d, nil
	case "Replace":
		p, err := c.pattern("pattern")
		if err != nil {
			return nil, err
		}
		var content string
		if err := c.fields("content", &content); err != nil {
			return nil, err
		}
		return replaceDecoder{pattern: p, content: content}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var content string
		var d stripDecoder
		if err := c.fields("content", &content, "start", &d.start, "stop", &d.stop); err != nil {
			return nil, err
		}
		rs := []rune(content)
		if len(rs) != 1 {
			return nil, fmt.Errorf("content %q: want one character", content)
		}
		d.content = rs[0]
		return d, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "BPEDecoder":
		d := bpeSuffixDecoder{suffix: "</w>"}
		if err := c.fields("suffix", &d.suffix); err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("unsupported type %q", typ)
}
