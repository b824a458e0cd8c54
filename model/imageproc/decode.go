package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// DefaultMaxPixels is the largest width×height decoded unless Options says
// otherwise: Pillow's decompression-bomb error threshold (twice
// Image.MAX_IMAGE_PIXELS).
const DefaultMaxPixels = 178956970

// ErrTooManyPixels is wrapped by decode errors for images whose header
// claims more pixels than the processor's limit.
var ErrTooManyPixels = errors.New("image exceeds the pixel limit")

// ErrUnknownFormat is wrapped by decode errors for input that is not one of
// the supported formats (JPEG, PNG, GIF, WebP, BMP, TIFF).
var ErrUnknownFormat = errors.New("unknown image format")

// format is one supported container, recognised by its leading bytes.
type format struct {
	name         string
	matches      func(head []byte) bool
	decode       func(io.Reader) (image.Image, error)
	decodeConfig func(io.Reader) (image.Config, error)
}

func hasPrefix(prefixes ...string) func([]byte) bool {
	return func(head []byte) bool {
		for _, p := range prefixes {
			if bytes.HasPrefix(head, []byte(p)) {
				return true
			}
		}
		return false
	}
}

func isWebP(head []byte) bool {
	return len(head) >= 15 && string(head[:4]) == "RIFF" && string(head[8:15]) == "WEBPVP8"
}

// formats lists the decoders tried, in order. It is never modified.
var formats = []format{
	{"jpeg", hasPrefix("\xff\xd8"), jpeg.Decode, jpeg.DecodeConfig},
	{"png", hasPrefix("\x89PNG\r\n\x1a\n"), png.Decode, png.DecodeConfig},
	{"gif", hasPrefix("GIF87a", "GIF89a"), gif.Decode, gif.DecodeConfig},
	{"webp", isWebP, decodeWebP, webp.DecodeConfig},
	{"bmp", hasPrefix("BM"), bmp.Decode, bmp.DecodeConfig},
	{"tiff", hasPrefix("II*\x00", "MM\x00*"), tiff.Decode, tiff.DecodeConfig},
}

func sniff(data []byte) (format, bool) {
	for _, f := range formats {
		if f.matches(data) {
			return f, true
		}
	}
	return format{}, false
}

// decodeBytes decodes data after checking the header's dimensions and
// decode cost against p's limits. Errors are not yet wrapped with the
// input name.
func (p *Processor) decodeBytes(data []byte) (img image.Image, err error) {
	f, _, err := p.header(data)
	if err != nil {
		return nil, err
	}
	// The third-party decoders are not all hardened against hostile input;
	// a panic in one must fail this image, not the worker.
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%s decoder panic: %v", f.name, r)
		}
	}()
	img, err = f.decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	if b := img.Bounds(); b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, fmt.Errorf("%s: empty image", f.name)
	}
	return img, nil
}
