package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"blipflow/model/blip2"
	"blipflow/model/device"
	"blipflow/model/generate"
	"blipflow/model/nn"
)

// captionBatches parses --caption-batch: sizes and "max" (the largest batch
// that fits, found by doubling until the device runs out of memory).
func captionBatches(s string) (sizes []int, findMax bool, err error) {
	if strings.TrimSpace(s) == "" {
		return nil, false, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "max" {
			findMax = true
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, false, fmt.Errorf("--caption-batch: %q is not a positive integer or max", f)
		}
		sizes = append(sizes, n)
	}
	return sizes, findMax, nil
}

// captionOnce captions n random images with newTokens greedy tokens each
// (no early EOS), from pixels to ids, and returns the seconds it took.
func captionOnce(m *blip2.Model, n, newTokens int) (float64, error) {
	c := m.Config
	size := c.Vision.ImageSize
	pixels := nn.NewRandomSource(uint64(n), 1).Shaped([]int{n, 3, size, size})
	var row []int
	if c.ImageTokenIndex != nil {
		for range c.NumQueryTokens {
			row = append(row, *c.ImageTokenIndex)
		}
	}
	if c.Text.BOSTokenID != nil {
		row = append(row, *c.Text.BOSTokenID)
	} else {
		row = append(row, c.Text.PadTokenID)
	}
	ids, mask := make([][]int, n), make([][]int, n)
	for i := range ids {
		ids[i] = row
		mask[i] = make([]int, len(row))
		for j := range mask[i] {
			mask[i][j] = 1
		}
	}
	cfg := generate.Config{MaxNewTokens: &newTokens, MinNewTokens: &newTokens}
	start := time.Now()
	img, err := m.EncodeImages(context.Background(), pixels, n)
	if err != nil {
		return 0, err
	}
	out, err := m.Generate(context.Background(), img, ids, mask, cfg)
	if err != nil {
		return 0, err
	}
	secs := time.Since(start).Seconds()
	if len(out) != n || len(out[0][0]) != newTokens {
		return 0, fmt.Errorf("caption bench: %d rows of %d tokens, want %d of %d", len(out), len(out[0][0]), n, newTokens)
	}
	return secs, nil
}

// benchCaptions prints images/s for captioning at each batch size (the
// best of repeats runs), then, with findMax on a GPU, at the largest batch
// that fits.
func benchCaptions(w io.Writer, m *blip2.Model, sizes []int, findMax bool, newTokens, repeats int, onGPU bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\ncaptioning, %d new tokens\tbatch\ts\timages/s\t\n", newTokens)
	run := func(n int) error {
		best := 0.0
		for r := 0; r < max(repeats, 1); r++ {
			s, err := captionOnce(m, n, newTokens)
			if err != nil {
				return err
			}
			if r == 0 || s < best {
				best = s
			}
		}
		fmt.Fprintf(tw, "caption\t%d\t%.3f\t%.1f\t\n", n, best, float64(n)/best)
		return nil
	}
	for _, n := range sizes {
		if err := run(n); err != nil {
			return fmt.Errorf("caption batch %d: %w", n, err)
		}
	}
	if findMax {
		if !onGPU {
			fmt.Fprintf(tw, "caption\tmax\t-\t(only on a GPU)\t\n")
		} else {
			largest := 0
			for n := max(slicesMax(sizes), 1) * 2; n <= 1<<14; n *= 2 {
				if _, err := captionOnce(m, n, newTokens); err != nil {
					if errors.Is(err, device.ErrOutOfMemory) {
						break
					}
					return fmt.Errorf("caption batch %d: %w", n, err)
				}
				largest = n
			}
			if largest > 0 {
				fmt.Fprintf(tw, "(largest that fits)\t\t\t\t\n")
				if err := run(largest); err != nil {
					return err
				}
			}
		}
	}
	return tw.Flush()
}

func slicesMax(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}
