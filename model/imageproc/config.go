package imageproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// PIL resampling filter codes, as stored in the "resample" field of a
// preprocessor config.
const (
	ResampleNearest  = 0
	ResampleLanczos  = 1
	ResampleBilinear = 2
	ResampleBicubic  = 3
	ResampleBox      = 4
	ResampleHamming  = 5
)

// Size is the "size" field of a preprocessor config: either a fixed
// Height×Width or a ShortestEdge the image is scaled to, keeping its aspect
// ratio.
type Size struct {
	Height       int `json:"height,omitempty"`
	Width        int `json:"width,omitempty"`
	ShortestEdge int `json:"shortest_edge,omitempty"`
}

// UnmarshalJSON accepts the object form and the legacy single-integer form,
// which BLIP's processor reads as a square size.
func (s *Size) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*s = Size{Height: n, Width: n}
		return nil
	}
	type plain Size
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = Size(p)
	return nil
}

// ChannelValues holds one value per RGB channel. In JSON it is a list of
// three numbers or a single number used for every channel.
type ChannelValues [3]float64

// UnmarshalJSON accepts a number or a list of three numbers.
func (c *ChannelValues) UnmarshalJSON(b []byte) error {
	var v float64
	if err := json.Unmarshal(b, &v); err == nil {
		*c = ChannelValues{v, v, v}
		return nil
	}
	var list []float64
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	if len(list) != 3 {
		return fmt.Errorf("want 3 channel values, got %d", len(list))
	}
	copy(c[:], list)
	return nil
}

// Config is the image part of a BLIP-2 processor configuration, with the
// field names of transformers' preprocessor_config.json.
type Config struct {
	DoResize      bool          `json:"do_resize"`
	Size          Size          `json:"size"`
	Resample      int           `json:"resample"`
	DoRescale     bool          `json:"do_rescale"`
	RescaleFactor float64       `json:"rescale_factor"`
	DoNormalize   bool          `json:"do_normalize"`
	ImageMean     ChannelValues `json:"image_mean"`
	ImageStd      ChannelValues `json:"image_std"`
	DoConvertRGB  bool          `json:"do_convert_rgb"`
}

// DefaultConfig returns transformers' BlipImageProcessor defaults (384×384
// bicubic, rescale 1/255, OpenAI CLIP mean and std). Fields missing from a
// config file keep these values.
func DefaultConfig() Config {
	return Config{
		DoResize:      true,
		Size:          Size{Height: 384, Width: 384},
		Resample:      ResampleBicubic,
		DoRescale:     true,
		RescaleFactor: 1.0 / 255,
		DoNormalize:   true,
		ImageMean:     ChannelValues{0.48145466, 0.4578275, 0.40821073},
		ImageStd:      ChannelValues{0.26862954, 0.26130258, 0.27577711},
		DoConvertRGB:  true,
	}
}

// Validate reports the first field that the processor cannot honour.
func (c Config) Validate() error {
	if c.DoResize {
		s := c.Size
		switch {
		case s.ShortestEdge > 0 && s.Height == 0 && s.Width == 0:
		case s.Height > 0 && s.Width > 0 && s.ShortestEdge == 0:
		default:
			return fmt.Errorf("size: want height and width, or shortest_edge, all positive; got %+v", s)
		}
		if _, ok := resampleFilters[c.Resample]; !ok {
			return fmt.Errorf("resample: filter %d is not supported (want 1 lanczos, 2 bilinear, 3 bicubic, 4 box or 5 hamming)", c.Resample)
		}
	}
	if c.DoRescale && (c.RescaleFactor == 0 || math.IsNaN(c.RescaleFactor) || math.IsInf(c.RescaleFactor, 0)) {
		return fmt.Errorf("rescale_factor: %v is not a usable factor", c.RescaleFactor)
	}
	if c.DoNormalize {
		for i, s := range c.ImageStd {
			if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
				return fmt.Errorf("image_std[%d]: %v is not a usable divisor", i, s)
			}
		}
	}
	return nil
}

// ParseConfig reads a preprocessor config from JSON, starting from
// DefaultConfig for absent fields, and validates it.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	if err := json.Unmarshal(data, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// LoadConfig reads the image processor settings of a checkpoint folder: the
// "image_processor" block of processor_config.json (how transformers 5
// saves a processor) or, failing that, preprocessor_config.json.
func LoadConfig(dir string) (Config, error) {
	procPath := filepath.Join(dir, "processor_config.json")
	data, err := os.ReadFile(procPath)
	switch {
	case err == nil:
		var wrapper struct {
			ImageProcessor json.RawMessage `json:"image_processor"`
		}
		if err := json.Unmarshal(data, &wrapper); err != nil {
			return Config{}, fmt.Errorf("imageproc: config %s: %w", procPath, err)
		}
		if len(wrapper.ImageProcessor) > 0 {
			cfg, err := ParseConfig(wrapper.ImageProcessor)
			if err != nil {
				return Config{}, fmt.Errorf("imageproc: config %s: image_processor: %w", procPath, err)
			}
			return cfg, nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return Config{}, fmt.Errorf("imageproc: config: %w", err)
	}
	prePath := filepath.Join(dir, "preprocessor_config.json")
	data, err = os.ReadFile(prePath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, fmt.Errorf("imageproc: config: %s has neither processor_config.json with an image_processor block nor preprocessor_config.json", dir)
		}
		return Config{}, fmt.Errorf("imageproc: config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("imageproc: config %s: %w", prePath, err)
	}
	return cfg, nil
}

// outputSize returns the resized width and height for an input of w×h,
// following transformers' size rules (shortest_edge keeps the aspect ratio
// and truncates the long side).
func (c Config) outputSize(w, h int) (int, int) {
	if !c.DoResize {
		return w, h
	}
	if c.Size.ShortestEdge > 0 {
		short, long := w, h
		if h < w {
			short, long = h, w
		}
		newShort := c.Size.ShortestEdge
		newLong := int(float64(newShort) * float64(long) / float64(short))
		if w <= h {
			return newShort, newLong
		}
		return newLong, newShort
	}
	return c.Size.Width, c.Size.Height
}
