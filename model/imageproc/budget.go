package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
)

// DefaultMaxDecodeBytes is the most memory one image may take to decode
// and convert unless Options says otherwise: 1 GiB, a 16-bit RGBA image of
// about 97 megapixels or an 8-bit RGB one of about 179. The worker bounds
// all its concurrent decodes together separately (see DecodeCost).
const DefaultMaxDecodeBytes = 1 << 30

// ErrTooManyBytes is wrapped by decode errors for images whose header
// implies more decoding memory than the processor's byte limit.
var ErrTooManyBytes = errors.New("image exceeds the decode memory limit")

// DecodeCost returns the bytes decoding data and converting it to RGB will
// hold at once, from the header alone: width × height × (bytes per pixel
// of the decoded format, plus the coefficient planes of a progressive
// JPEG, plus the 3 bytes per pixel of the RGB copy preprocessing makes).
// It fails, without decoding, for input that is not a supported image or
// whose cost is over the processor's limits.
func (p *Processor) DecodeCost(name string, data []byte) (int64, error) {
	_, cost, err := p.header(data)
	if err != nil {
		return 0, fmt.Errorf("imageproc: decode %q: %w", name, err)
	}
	return cost, nil
}

// header checks data's header against the limits and returns its format
// and decode cost.
func (p *Processor) header(data []byte) (format, int64, error) {
	if len(data) == 0 {
		return format{}, 0, errors.New("empty input")
	}
	f, ok := sniff(data)
	if !ok {
		return format{}, 0, ErrUnknownFormat
	}
	cfg, err := f.decodeConfig(bytes.NewReader(data))
	if err != nil {
		return format{}, 0, fmt.Errorf("%s header: %w", f.name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return format{}, 0, fmt.Errorf("%s header: empty %dx%d image", f.name, cfg.Width, cfg.Height)
	}
	pixels := int64(cfg.Width) * int64(cfg.Height)
	if pixels > int64(p.maxPixels) {
		return format{}, 0, fmt.Errorf("%s %dx%d: %w of %d pixels", f.name, cfg.Width, cfg.Height, ErrTooManyPixels, p.maxPixels)
	}
	perPixel := bytesPerPixel(cfg.ColorModel) + 3
	if f.name == "jpeg" && progressiveJPEG(data) {
		// Go's progressive decoder keeps a 4-byte coefficient per sample
		// of every component until the last scan.
		perPixel += 4 * jpegComponents(cfg.ColorModel)
	}
	cost := pixels * perPixel
	if cost > p.maxBytes {
		return format{}, 0, fmt.Errorf("%s %dx%d (%s): %w of %s (needs %s)", f.name, cfg.Width, cfg.Height,
			modelName(cfg.ColorModel), ErrTooManyBytes, formatBytes(p.maxBytes), formatBytes(cost))
	}
	return f, cost, nil
}

// bytesPerPixel is the size of one pixel of the image type a decoder
// returns for a colour model (8, the widest, when unknown).
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3 // 4:4:4 at most
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8
}

func jpegComponents(m color.Model) int64 {
	switch m {
	case color.GrayModel:
		return 1
	case color.CMYKModel:
		return 4
	}
	return 3
}

func modelName(m color.Model) string {
	switch m {
	case color.GrayModel:
		return "8-bit gray"
	case color.Gray16Model:
		return "16-bit gray"
	case color.YCbCrModel:
		return "YCbCr"
	case color.RGBAModel, color.NRGBAModel:
		return "8-bit RGBA"
	case color.RGBA64Model, color.NRGBA64Model:
		return "16-bit RGBA"
	case color.CMYKModel:
		return "CMYK"
	}
	if _, ok := m.(color.Palette); ok {
		return "paletted"
	}
	return fmt.Sprintf("%T", m)
}

// progressiveJPEG reports whether the first start-of-frame marker of a
// JPEG is a progressive one (SOF2, SOF6, SOF10, SOF14).
func progressiveJPEG(data []byte) bool {
	i := 2
	for i+4 <= len(data) {
		if data[i] != 0xff {
			return false
		}
		marker := data[i+1]
		if marker == 0xff { // fill byte
			i++
			continue
		}
		if marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc {
			return marker == 0xc2 || marker == 0xc6 || marker == 0xca || marker == 0xce
		}
		if marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7) {
			i += 2
			continue
		}
		i += 2 + int(data[i+2])<<8 | int(data[i+3])
	}
	return false
}

// formatBytes writes n in binary units for limit messages: "1 GiB",
// "512 MiB", "1.3 GiB".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return trimFloat(float64(n)/(1<<30)) + " GiB"
	case n >= 1<<20:
		return trimFloat(float64(n)/(1<<20)) + " MiB"
	case n >= 1<<10:
		return trimFloat(float64(n)/(1<<10)) + " KiB"
	}
	return fmt.Sprintf("%d B", n)
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return string(bytes.TrimSuffix([]byte(s), []byte(".0")))
}
