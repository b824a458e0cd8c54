package report

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"sync"

	"golang.org/x/image/draw"

	"blipflow/model/imageproc"
)

// thumbQuality is the JPEG quality of the thumbnails.
const thumbQuality = 82

// thumbnailer decodes images the way the pipeline does and writes them as
// small JPEGs.
type thumbnailer struct {
	size int
	once sync.Once
	proc *imageproc.Processor
	err  error
}

func newThumbnailer(size int) *thumbnailer { return &thumbnailer{size: size} }

// write decodes the image key (its bytes src) and writes its thumbnail to
// path.
func (t *thumbnailer) write(key string, src []byte, path string) error {
	t.once.Do(func() { t.proc, t.err = imageproc.New(imageproc.DefaultConfig(), imageproc.Options{}) })
	if t.err != nil {
		return fmt.Errorf("thumbnail %s: %w", key, t.err)
	}
	img, err := t.proc.DecodeBytes(key, src)
	if err != nil {
		return fmt.Errorf("thumbnail %s: %w", key, err)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, Fit(img, t.size), &jpeg.Options{Quality: thumbQuality}); err != nil {
		return fmt.Errorf("thumbnail %s: encode: %w", key, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("thumbnail %s: %w", key, err)
	}
	return nil
}

// Fit scales img (up or down, keeping its aspect ratio) so that its longest
// side is size pixels.
func Fit(img image.Image, size int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return image.NewRGBA(image.Rect(0, 0, 1, 1))
	}
	if w >= h {
		w, h = size, max(1, h*size/w)
	} else {
		w, h = max(1, w*size/h), size
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}
