package imageproc

import (
	"image"
	"image/color"
	"testing"
)

func TestCMYKMatchesPillow(t *testing.T) {
	for _, tc := range []struct {
		c, m, y, k uint8
		want       [3]uint8
	}{
		{0, 0, 0, 0, [3]uint8{255, 255, 255}},
		{255, 0, 0, 0, [3]uint8{0, 255, 255}},
		{0, 0, 0, 255, [3]uint8{0, 0, 0}},
		{128, 64, 0, 64, [3]uint8{95, 143, 191}},
	} {
		r, g, b := cmykToRGB(tc.c, tc.m, tc.y, tc.k)
		if got := [3]uint8{r, g, b}; got != tc.want {
			t.Errorf("CMYK %d,%d,%d,%d -> %v, want %v", tc.c, tc.m, tc.y, tc.k, got, tc.want)
		}
	}
}

func TestAlphaIsDropped(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	img.SetNRGBA(0, 0, color.NRGBA{10, 20, 30, 0})
	img.SetNRGBA(1, 0, color.NRGBA{200, 100, 50, 128})
	var sc rgbScratch
	got := toRGB(nil, img, &sc)
	want := []uint8{10, 20, 30, 200, 100, 50}
	if string(got) != string(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Premultiplied input is unpremultiplied first.
	pre := image.NewRGBA(image.Rect(0, 0, 1, 1))
	pre.SetRGBA(0, 0, color.RGBA{100, 50, 0, 128})
	got = toRGB(nil, pre, &sc)
	if got[0] < 198 || got[0] > 200 || got[1] < 99 || got[1] > 100 || got[2] != 0 {
		t.Errorf("premultiplied: got %v", got)
	}
}

// TestFancyUpsampling checks libjpeg's triangle filter on a chroma ramp:
// interior outputs weigh the nearer sample 3/4 and the further 1/4.
func TestFancyUpsampling(t *testing.T) {
	in := []uint8{0, 40, 80, 120}
	out := make([]uint8, 8)
	fancyH2V1(out, in)
	want := []uint8{0, 10, 30, 50, 70, 90, 110, 120}
	if string(out) != string(want) {
		t.Errorf("h2v1: got %v, want %v", out, want)
	}
	sums := make([]int32, 4)
	fancyH2V2(out, in, in, sums)
	if string(out) != string(want) {
		t.Errorf("h2v2 with equal rows: got %v, want %v", out, want)
	}
	far := []uint8{160, 160, 160, 160}
	fancyH1V2(out[:4], in, far, 2)
	if want := []uint8{40, 70, 100, 130}; string(out[:4]) != string(want) {
		t.Errorf("h1v2: got %v, want %v", out[:4], want)
	}
	// A constant plane stays constant through the VP8 upsampler too.
	flat := []uint8{77, 77, 77}
	row := make([]uint8, 6)
	vp8UpsampleRow(row, flat, flat, 6)
	for _, v := range row {
		if v != 77 {
			t.Fatalf("vp8 upsampler on a constant plane: %v", row)
		}
	}
}

func TestYCbCrSubsampleRatios(t *testing.T) {
	// Every ratio converts a neutral grey to the same grey.
	for _, r := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		m := image.NewYCbCr(image.Rect(0, 0, 13, 7), r)
		for i := range m.Y {
			m.Y[i] = 90
		}
		for i := range m.Cb {
			m.Cb[i], m.Cr[i] = 128, 128
		}
		var sc rgbScratch
		for i, v := range toRGB(nil, m, &sc) {
			if v != 90 {
				t.Fatalf("ratio %v: sample %d = %d, want 90", r, i, v)
			}
		}
	}
}
