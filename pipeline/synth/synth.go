// Package synth makes small deterministic images for the plumbing
// benchmark and the pipeline's tests.
package synth

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"

	"blipflow/storage"
)

// PNG returns a width×height PNG whose pixels depend on seed.
func PNG(seed, width, height int) ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		for x := range width {
			img.SetNRGBA(x, y, color.NRGBA{
				R: uint8(x*7 + seed*13),
				G: uint8(y*5 + seed*29),
				B: uint8((x^y)*3 + seed),
				A: 255,
			})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("synth image %d: %w", seed, err)
	}
	return buf.Bytes(), nil
}

// Key is the key of the i-th image Write stores.
func Key(i int) string { return fmt.Sprintf("img/%03d/%06d.png", i%100, i) }

// Write stores n images (Key(0)..Key(n-1)) of width×height in store.
func Write(ctx context.Context, store storage.Store, n, width, height int) error {
	for i := range n {
		data, err := PNG(i, width, height)
		if err != nil {
			return err
		}
		if err := store.Write(ctx, Key(i), data); err != nil {
			return fmt.Errorf("synth: write %s: %w", Key(i), err)
		}
	}
	return nil
}
