package generate

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"testing"

	"blipflow/internal/fixtures"
)

func TestLoadConfigFixtures(t *testing.T) {
	tests := []struct {
		model     string
		eos       TokenIDs
		pad       int
		beamFill  int
		greedyPad int
	}{
		// OPT: pad 1 is kept by beam search.
		{"opt-tiny", TokenIDs{2}, 1, 1, 1},
		// T5: pad 0 is falsy in Python, so beam search fills with EOS 1 (golden c4).
		{"t5-tiny", TokenIDs{1}, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			c, err := LoadConfig(fixtures.Path(tt.model, "model"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.EOSTokenID, tt.eos) || c.PadTokenID == nil || *c.PadTokenID != tt.pad {
				t.Errorf("eos %v pad %v, want %v %d", c.EOSTokenID, c.PadTokenID, tt.eos, tt.pad)
			}
			if got := c.FillToken(); got != tt.greedyPad {
				t.Errorf("greedy fill %d, want %d", got, tt.greedyPad)
			}
			if got := c.Merge(Config{NumBeams: Int(3)}).FillToken(); got != tt.beamFill {
				t.Errorf("beam fill %d, want %d", got, tt.beamFill)
			}
		})
	}
	if _, err := LoadConfig(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"eos_token_id": [2, 50118], "early_stopping": "never",
		"num_beams": 5, "length_penalty": 0.6, "max_length": 30, "typical_p": 1.0,
		"transformers_version": "5.17.0", "_from_model_config": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.EOSTokenID, TokenIDs{2, 50118}) || *c.EarlyStopping != EarlyStopNever ||
		*c.NumBeams != 5 || *c.LengthPenalty != 0.6 || *c.MaxLength != 30 {
		t.Errorf("parsed %+v", c)
	}
	for _, bad := range []string{
		`{"typical_p": 0.9}`,
		`{"bad_words_ids": [[1]]}`,
		`{"early_stopping": "sometimes"}`,
		`{"eos_token_id": "two"}`,
		`not json`,
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

func TestResolveDefaults(t *testing.T) {
	s, err := Config{}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.maxNew != 20 || s.maxLength != -1 || s.numBeams != 1 || s.topK != 0 || s.doSample ||
		s.lengthPenalty != 1 || s.earlyStopping != EarlyStopHeuristic {
		t.Errorf("defaults %+v", s)
	}
	// top_k defaults to 50, but only when sampling.
	s, err = Config{DoSample: Bool(true)}.resolve()
	if err != nil || s.topK != 50 {
		t.Errorf("sampling top_k %d (%v), want 50", s.topK, err)
	}
	// max_new_tokens wins over max_length; min_new_tokens over min_length.
	s, err = Config{MaxNewTokens: Int(4), MaxLength: Int(100), MinNewTokens: Int(2), MinLength: Int(50)}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	lim, err := s.limitsFor(10)
	if err != nil || lim.maxTotal != 14 || lim.minTotal != 12 {
		t.Errorf("limits %+v (%v), want max 14 min 12", lim, err)
	}
}

func TestSetAndMerge(t *testing.T) {
	var c Config
	for _, kv := range [][2]string{
		{"num_beams", "3"}, {"early_stopping", "never"}, {"eos_token_id", "[1,2]"},
		{"do_sample", "true"}, {"top_p", "0.9"}, {"seed", "42"},
	} {
		if err := c.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%s, %s): %v", kv[0], kv[1], err)
		}
	}
	if *c.NumBeams != 3 || *c.EarlyStopping != EarlyStopNever || !reflect.DeepEqual(c.EOSTokenID, TokenIDs{1, 2}) ||
		!*c.DoSample || *c.TopP != 0.9 || *c.Seed != 42 {
		t.Errorf("after Set: %+v", c)
	}
	if err := c.Set("num_beam", "3"); err == nil {
		t.Error("unknown key: want an error")
	}
	base := Config{NumBeams: Int(1), MaxNewTokens: Int(9)}
	merged := base.Merge(Config{NumBeams: Int(4)})
	if *merged.NumBeams != 4 || *merged.MaxNewTokens != 9 || *base.NumBeams != 1 {
		t.Errorf("merge %+v from %+v", merged, base)
	}
}

// FuzzParseConfig checks that any input either parses or fails cleanly and
// that parsed settings either resolve or fail cleanly.
func FuzzParseConfig(f *testing.F) {
	for _, model := range []string{"opt-tiny", "t5-tiny"} {
		data, err := os.ReadFile(fixtures.Path(model, "model", ConfigFile))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"eos_token_id": [1, 2], "early_stopping": "never", "num_beams": 4}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if s, err := c.resolve(); err == nil && s.numBeams < 1 {
			t.Errorf("resolved num_beams %d", s.numBeams)
		}
	})
}
