package tokenizer

import (
	"fmt"
	"sync"
)

// modelToken is one token a model produced for a word: its id, its string
// and the rune range [start, end) of the word it covers.
type modelToken struct {
	id         int
	value      string
	start, end int
}

// model turns one pre-tokenized word into tokens.
type model interface {
	tokenize(word []rune) ([]modelToken, error)
	tokenToID(token string) (int, bool)
	idToToken(id int) (string, bool)
	size() int
}

// vocabulary is a token <-> id map shared by the models.
type vocabulary struct {
	ids    map[string]int
	tokens map[int]string
}

func newVocabulary(ids map[string]int) vocabulary {
	v := vocabulary{ids: ids, tokens: make(map[int]string, len(ids))}
	for tok, id := range ids {
		v.tokens[id] = tok
	}
	return v
}

func (v vocabulary) tokenToID(token string) (int, bool) { id, ok := v.ids[token]; return id, ok }
func (v vocabulary) idToToken(id int) (string, bool)    { t, ok := v.tokens[id]; return t, ok }
func (v vocabulary) size() int                          { return len(v.ids) }

// wordCache memoizes the tokens of frequent words, as the reference does. It
// stops growing at capacity.
type wordCache struct {
	mu       sync.RWMutex
	words    map[string][]modelToken
	capacity int
}

func newWordCache(capacity int) *wordCache {
	return &wordCache{words: make(map[string][]modelToken), capacity: capacity}
}

func (c *wordCache) get(word string) ([]modelToken, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	toks, ok := c.words[word]
	return toks, ok
}

func (c *wordCache) put(word string, toks []modelToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.words) < c.capacity {
		c.words[word] = toks
	}
}

// cachedTokenize looks word up in c, or tokenizes it with f and remembers it.
// Callers get their own copy of the slice.
func cachedTokenize(c *wordCache, word []rune, f func([]rune) ([]modelToken, error)) ([]modelToken, error) {
	key := string(word)
	if toks, ok := c.get(key); ok {
		return append([]modelToken(nil), toks...), nil
	}
	toks, err := f(word)
	if err != nil {
		return nil, err
	}
	c.put(key, toks)
	return append([]modelToken(nil), toks...), nil
}

// errNoUnknown is returned when a model meets an unknown piece but has no
// unknown token to map it to.
var errNoUnknown = fmt.Errorf("unknown piece and the model has no unk token")
