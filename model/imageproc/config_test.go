package imageproc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
)

func TestLoadConfig(t *testing.T) {
	want := Config{
		DoResize:      true,
		Size:          Size{Height: 224, Width: 224},
		Resample:      ResampleBicubic,
		DoRescale:     true,
		RescaleFactor: 0.00392156862745098,
		DoNormalize:   true,
		ImageMean:     ChannelValues{0.48145466, 0.4578275, 0.40821073},
		ImageStd:      ChannelValues{0.26862954, 0.26130258, 0.27577711},
		DoConvertRGB:  true,
	}
	for _, dir := range []string{
		fixtures.Path("opt-tiny", "model"), // processor_config.json
		fixtures.Path("preprocess"),        // preprocessor_config.json
	} {
		got, err := LoadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: got %+v, want %+v", dir, got, want)
		}
	}
}

func TestLoadConfigMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("empty folder: got %v", err)
	}
	// A processor_config.json without an image_processor block falls back
	// to preprocessor_config.json.
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("processor_config.json", `{"processor_class": "Blip2Processor"}`)
	write("preprocessor_config.json", `{"size": 364}`)
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Size != (Size{Height: 364, Width: 364}) {
		t.Errorf("size %+v", cfg.Size)
	}
	write("preprocessor_config.json", `{"image_std": [0.5, 0, 0.5]}`)
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), "image_std[1]") {
		t.Errorf("zero std: got %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		json    string
		check   func(Config) bool
		wantErr string
	}{
		{`{}`, func(c Config) bool { return c == DefaultConfig() }, ""},
		{`{"image_mean": 0.5, "image_std": 0.25}`, func(c Config) bool {
			return c.ImageMean == ChannelValues{0.5, 0.5, 0.5} && c.ImageStd == ChannelValues{0.25, 0.25, 0.25}
		}, ""},
		{`{"size": {"shortest_edge": 224}}`, func(c Config) bool { return c.Size.ShortestEdge == 224 }, ""},
		{`{"resample": 0}`, nil, "resample"},
		{`{"size": {"height": 224}}`, nil, "size"},
		{`{"image_mean": [1, 2]}`, nil, "3 channel values"},
		{`{"do_rescale": true, "rescale_factor": 0}`, nil, "rescale_factor"},
		{`{"do_resize": false, "resample": 0}`, func(c Config) bool { return !c.DoResize }, ""},
		{`not json`, nil, "invalid"},
	} {
		cfg, err := ParseConfig([]byte(tc.json))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: got error %v, want one mentioning %q", tc.json, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.json, err)
			continue
		}
		if !tc.check(cfg) {
			t.Errorf("%s: unexpected %+v", tc.json, cfg)
		}
	}
}

func TestOutputSize(t *testing.T) {
	short := Config{DoResize: true, Size: Size{ShortestEdge: 224}}
	fixed := Config{DoResize: true, Size: Size{Height: 224, Width: 200}}
	for _, tc := range []struct {
		cfg          Config
		w, h         int
		wantW, wantH int
	}{
		{fixed, 640, 427, 200, 224},
		{short, 640, 427, 335, 224},
		{short, 427, 640, 224, 335},
		{short, 300, 300, 224, 224},
		{Config{}, 31, 17, 31, 17},
	} {
		w, h := tc.cfg.outputSize(tc.w, tc.h)
		if w != tc.wantW || h != tc.wantH {
			t.Errorf("%+v on %dx%d: got %dx%d, want %dx%d", tc.cfg.Size, tc.w, tc.h, w, h, tc.wantW, tc.wantH)
		}
	}
}
