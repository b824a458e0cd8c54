package tokenizer

// wordPieceModel is BERT's greedy longest-match-first WordPiece.
type wordPieceModel struct {
	vocabulary
	unkToken string
	prefix   string // continuing_subword_prefix, "##"
	maxChars int    // words longer than this become the unknown token
}

func (m *wordPieceModel) tokenize(word []rune) ([]modelToken, error) {
	if len(word) == 0 {
		return nil, nil
	}
	unk := func() ([]modelToken, error) {
		id, ok := m.ids[m.unkToken]
		if !ok {
			return nil, errNoUnknown
		}
		return []modelToken{{id: id, value: m.unkToken, start: 0, end: len(word)}}, nil
	}
	if len(word) > m.maxChars {
		return unk()
	}
	var out []modelToken
	for start := 0; start < len(word); {
		found := false
		for end := len(word); end > start; end-- {
			piece := string(word[start:end])
			if start > 0 {
				piece = m.prefix + piece
			}
			if id, ok := m.ids[piece]; ok {
				out = append(out, modelToken{id: id, value: piece, start: start, end: end})
				start = end
				found = true
				break
			}
		}
		if !found {
			return unk()
		}
	}
	return out, nil
}

// wordLevelModel maps each whole word to its id, or to the unknown token.
type wordLevelModel struct {
	vocabulary
	unkToken string
}

func (m *wordLevelModel) tokenize(word []rune) ([]modelToken, error) {
	if len(word) == 0 {
		return nil, nil
	}
	value := string(word)
	id, ok := m.ids[value]
	if !ok {
		if id, ok = m.ids[m.unkToken]; !ok {
			return nil, errNoUnknown
		}
		value = m.unkToken
	}
	return []modelToken{{id: id, value: value, start: 0, end: len(word)}}, nil
}
