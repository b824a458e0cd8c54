// Package imageproc turns image files into BLIP-2 pixel_values the way
// transformers' BlipImageProcessor does: decode as Pillow does (libjpeg
// chroma upsampling and colour tables for JPEG, libwebp's for WebP), convert
// to RGB like Pillow's convert("RGB") (alpha dropped), resize with the
// antialiased fixed-point resampler of torch/Pillow, rescale and normalise,
// and lay the result out as float32 CHW.
package imageproc

import (
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"sync"
)

// Options are the processor's safety limits.
type Options struct {
	// MaxPixels is the largest width×height accepted from an image header;
	// larger images are refused before their pixels are decoded. Zero means
	// DefaultMaxPixels.
	MaxPixels int
	// MaxDecodeBytes is the most memory one image may need to decode and
	// convert to RGB, computed from its header (see DecodeCost); larger
	// images are refused before decoding. Zero means DefaultMaxDecodeBytes.
	MaxDecodeBytes int64
	// Arithmetic selects the reference resampler reproduced; the zero value
	// is TorchvisionArithmetic, what transformers 5 runs.
	Arithmetic Arithmetic
}

// Processor preprocesses images for one configuration. It is safe for
// concurrent use; scratch buffers are pooled per processor.
type Processor struct {
	cfg        Config
	maxPixels  int
	maxBytes   int64
	filter     filter
	arithmetic Arithmetic
	// lut maps each channel's 8-bit value to its rescaled, normalised float.
	lut     [3][256]float32
	scratch sync.Pool
}

// scratch is the per-call working memory reused across images.
type scratch struct {
	rgb, tmp, row []uint8
	acc           []int32
	horiz, vert   kernel
	conv          rgbScratch
}

// New returns a processor for cfg.
func New(cfg Config, opts Options) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("imageproc: config: %w", err)
	}
	if opts.Arithmetic != TorchvisionArithmetic && opts.Arithmetic != PillowArithmetic {
		return nil, fmt.Errorf("imageproc: options: unknown arithmetic %d", opts.Arithmetic)
	}
	if opts.MaxPixels < 0 {
		return nil, fmt.Errorf("imageproc: options: MaxPixels %d is negative", opts.MaxPixels)
	}
	if opts.MaxDecodeBytes < 0 {
		return nil, fmt.Errorf("imageproc: options: MaxDecodeBytes %d is negative", opts.MaxDecodeBytes)
	}
	p := &Processor{cfg: cfg, maxPixels: opts.MaxPixels, maxBytes: opts.MaxDecodeBytes, filter: resampleFilters[cfg.Resample], arithmetic: opts.Arithmetic}
	if p.maxPixels == 0 {
		p.maxPixels = DefaultMaxPixels
	}
	if p.maxBytes == 0 {
		p.maxBytes = DefaultMaxDecodeBytes
	}
	p.scratch.New = func() any { return new(scratch) }
	p.buildLUT()
	return p, nil
}

// buildLUT precomputes the float for every channel value, in float32 in the
// order transformers' torchvision backend uses: with both rescale and
// normalise it folds the factor into mean and std, (v - mean/f) / (std/f).
func (p *Processor) buildLUT() {
	c := p.cfg
	inv := float32(1 / c.RescaleFactor)
	for ch := range 3 {
		mean, std := float32(c.ImageMean[ch]), float32(c.ImageStd[ch])
		for v := range 256 {
			x := float32(v)
			switch {
			case c.DoRescale && c.DoNormalize:
				x = (x - mean*inv) / (std * inv)
			case c.DoRescale:
				x *= float32(c.RescaleFactor)
			case c.DoNormalize:
				x = (x - mean) / std
			}
			p.lut[ch][v] = x
		}
	}
}

// Config returns the processor's configuration.
func (p *Processor) Config() Config { return p.cfg }

// Decode reads an image from r. name identifies the input in errors. Images
// whose header claims more than the pixel limit, or more decoding memory
// than the byte limit, are refused before their pixels are decoded.
func (p *Processor) Decode(name string, r io.Reader) (image.Image, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("imageproc: decode %q: %w", name, err)
	}
	return p.DecodeBytes(name, data)
}

// DecodeBytes decodes an image held in memory; see Decode.
func (p *Processor) DecodeBytes(name string, data []byte) (image.Image, error) {
	img, err := p.decodeBytes(data)
	if err != nil {
		return nil, fmt.Errorf("imageproc: decode %q: %w", name, err)
	}
	return img, nil
}

// Shape returns the [3, height, width] of the tensor Preprocess makes from
// an image of the given size.
func (p *Processor) Shape(width, height int) []int {
	w, h := p.cfg.outputSize(width, height)
	return []int{3, h, w}
}

// Preprocess converts img to a float32 CHW tensor of shape
// Shape(img.Bounds().Dx(), img.Bounds().Dy()).
func (p *Processor) Preprocess(img image.Image) ([]float32, error) {
	b := img.Bounds()
	s := p.Shape(b.Dx(), b.Dy())
	dst := make([]float32, s[0]*s[1]*s[2])
	if err := p.PreprocessInto(dst, img); err != nil {
		return nil, err
	}
	return dst, nil
}

// PreprocessInto is Preprocess writing into dst, which must have exactly the
// tensor's length (a slot of a batch, for example).
func (p *Processor) PreprocessInto(dst []float32, img image.Image) error {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return fmt.Errorf("imageproc: preprocess: empty %dx%d image", w, h)
	}
	outW, outH := p.cfg.outputSize(w, h)
	if outW <= 0 || outH <= 0 {
		return fmt.Errorf("imageproc: preprocess: %dx%d image resizes to empty %dx%d", w, h, outW, outH)
	}
	if len(dst) != 3*outW*outH {
		return fmt.Errorf("imageproc: preprocess: destination holds %d values, want 3x%dx%d", len(dst), outH, outW)
	}
	sc := p.scratch.Get().(*scratch)
	defer p.scratch.Put(sc)

	sc.rgb = toRGB(sc.rgb, img, &sc.conv)
	plane := outW * outH
	emit := func(y int, row []uint8) {
		r := dst[y*outW : (y+1)*outW]
		g := dst[plane+y*outW : plane+(y+1)*outW]
		bl := dst[2*plane+y*outW : 2*plane+(y+1)*outW]
		row = row[:outW*3]
		for x := range outW {
			px := row[x*3 : x*3+3 : x*3+3]
			r[x] = p.lut[0][px[0]]
			g[x] = p.lut[1][px[1]]
			bl[x] = p.lut[2][px[2]]
		}
	}
	p.resize(sc, w, h, outW, outH, emit)
	return nil
}

// resize runs the two-pass antialiased resample on sc.rgb (w×h) to outW×outH and
// hands each output row to emit. Like Pillow it skips a pass whose size does
// not change and runs the horizontal pass only on the rows the vertical pass
// reads.
func (p *Processor) resize(sc *scratch, w, h, outW, outH int, emit func(int, []uint8)) {
	needH, needV := outW != w, outH != h
	if !needH && !needV {
		for y := range h {
			emit(y, sc.rgb[y*w*3:(y+1)*w*3])
		}
		return
	}
	sc.vert.build(h, outH, p.filter, p.arithmetic)
	src, srcW, rowOffset := sc.rgb, w, 0
	if needH {
		first := sc.vert.start[0]
		last := sc.vert.start[outH-1] + sc.vert.count[outH-1]
		sc.horiz.build(w, outW, p.filter, p.arithmetic)
		sc.tmp = growBytes(sc.tmp, outW*3*(last-first))
		resampleHorizontal(sc.tmp, sc.rgb, w, first, last-first, &sc.horiz)
		src, srcW, rowOffset = sc.tmp, outW, first
	}
	if !needV {
		for y := range outH {
			emit(y, src[(y-rowOffset)*srcW*3:(y-rowOffset+1)*srcW*3])
		}
		return
	}
	sc.acc = growInt32(sc.acc, srcW*3)
	sc.row = growBytes(sc.row, srcW*3)
	resampleVertical(src, srcW, rowOffset, &sc.vert, sc.acc, sc.row, emit)
}

// Bytes decodes and preprocesses an image held in memory; name identifies it
// in errors.
func (p *Processor) Bytes(name string, data []byte) ([]float32, error) {
	img, err := p.DecodeBytes(name, data)
	if err != nil {
		return nil, err
	}
	out, err := p.Preprocess(img)
	if err != nil {
		return nil, fmt.Errorf("%w (image %q)", err, name)
	}
	return out, nil
}

// File decodes and preprocesses the image file at path.
func (p *Processor) File(path string) ([]float32, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("imageproc: decode %q: %w", path, err)
	}
	return p.Bytes(path, data)
}

// Batch preprocesses images into one contiguous [N,3,H,W] tensor and returns
// it with its shape. All images must resize to the same size.
func (p *Processor) Batch(imgs []image.Image) ([]float32, []int, error) {
	if len(imgs) == 0 {
		return nil, nil, errors.New("imageproc: batch: no images")
	}
	var shape []int
	for i, img := range imgs {
		b := img.Bounds()
		s := p.Shape(b.Dx(), b.Dy())
		if shape == nil {
			shape = s
		} else if s[1] != shape[1] || s[2] != shape[2] {
			return nil, nil, fmt.Errorf("imageproc: batch: image %d resizes to %dx%d, image 0 to %dx%d", i, s[2], s[1], shape[2], shape[1])
		}
	}
	size := shape[0] * shape[1] * shape[2]
	out := make([]float32, len(imgs)*size)
	for i, img := range imgs {
		if err := p.PreprocessInto(out[i*size:(i+1)*size], img); err != nil {
			return nil, nil, fmt.Errorf("%w (batch image %d)", err, i)
		}
	}
	return out, append([]int{len(imgs)}, shape...), nil
}

// BatchFiles decodes and preprocesses the image files at paths, in order,
// into one [N,3,H,W] tensor and returns it with its shape. Each file is
// decoded only while it is processed.
func (p *Processor) BatchFiles(paths []string) ([]float32, []int, error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("imageproc: batch: no images")
	}
	var out []float32
	var shape []int
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("imageproc: decode %q: %w", path, err)
		}
		img, err := p.DecodeBytes(path, data)
		if err != nil {
			return nil, nil, err
		}
		b := img.Bounds()
		s := p.Shape(b.Dx(), b.Dy())
		if shape == nil {
			shape = s
			out = make([]float32, 0, len(paths)*s[0]*s[1]*s[2])
		} else if s[1] != shape[1] || s[2] != shape[2] {
			return nil, nil, fmt.Errorf("imageproc: batch: %q resizes to %dx%d, %q to %dx%d", path, s[2], s[1], paths[0], shape[2], shape[1])
		}
		size := s[0] * s[1] * s[2]
		out = append(out, make([]float32, size)...)
		if err := p.PreprocessInto(out[len(out)-size:], img); err != nil {
			return nil, nil, fmt.Errorf("%w (image %q)", err, path)
		}
	}
	return out, append([]int{len(paths)}, shape...), nil
}
