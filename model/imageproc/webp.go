package imageproc

import (
	"image"
	"io"

	"golang.org/x/image/webp"
)

// Lossy WebP (VP8) stores BT.601 limited-range YUV 4:2:0, but
// golang.org/x/image/webp hands it back as an image.YCbCr, whose colour
// model is full-range JFIF. decodeWebP converts such planes to RGB the way
// libwebp (and so Pillow) does: its "fancy" chroma upsampler and its 14-bit
// fixed-point BT.601 conversion.

func decodeWebP(r io.Reader) (image.Image, error) {
	img, err := webp.Decode(r)
	if err != nil {
		return nil, err
	}
	switch m := img.(type) {
	case *image.YCbCr:
		return vp8ToNRGBA(m, nil, 0), nil
	case *image.NYCbCrA:
		return vp8ToNRGBA(&m.YCbCr, m.A, m.AStride), nil
	}
	return img, nil
}

func mulHi(v, coeff int32) int32 { return (v * coeff) >> 8 }

// vp8Clip8 is libwebp's VP8Clip8 (YUV_FIX2 = 6).
func vp8Clip8(v int32) uint8 {
	const mask = (256 << 6) - 1
	if v&^mask == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

func vp8ToRGB(y, u, v uint8) (uint8, uint8, uint8) {
	yy := mulHi(int32(y), 19077)
	r := vp8Clip8(yy + mulHi(int32(v), 26149) - 14234)
	g := vp8Clip8(yy - mulHi(int32(u), 6419) - mulHi(int32(v), 13320) + 8708)
	b := vp8Clip8(yy + mulHi(int32(u), 33050) - 17685)
	return r, g, b
}

// vp8ToNRGBA converts 4:2:0 VP8 planes (origin at 0,0) and an optional
// alpha plane to NRGBA.
func vp8ToNRGBA(m *image.YCbCr, alpha []uint8, alphaStride int) *image.NRGBA {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	cw, ch := (w+1)/2, (h+1)/2
	u := make([]uint8, w+1)
	v := make([]uint8, w+1)
	for y := range h {
		// Output row y blends chroma row y/2 (weight 3) with the row above
		// (even rows) or below (odd rows), clamped at the picture edges.
		near := y / 2
		far := near - 1
		if y%2 == 1 {
			far = near + 1
		}
		far = min(max(far, 0), ch-1)
		vp8UpsampleRow(u, m.Cb[near*m.CStride:near*m.CStride+cw], m.Cb[far*m.CStride:far*m.CStride+cw], w)
		vp8UpsampleRow(v, m.Cr[near*m.CStride:near*m.CStride+cw], m.Cr[far*m.CStride:far*m.CStride+cw], w)
		lum := m.Y[y*m.YStride : y*m.YStride+w]
		row := out.Pix[y*out.Stride : y*out.Stride+w*4]
		for x := range w {
			p := row[x*4 : x*4+4 : x*4+4]
			p[0], p[1], p[2] = vp8ToRGB(lum[x], u[x], v[x])
			p[3] = 255
			if alpha != nil {
				p[3] = alpha[y*alphaStride+x]
			}
		}
	}
	return out
}

// vp8UpsampleRow is libwebp's UPSAMPLE_FUNC for one output row of width w,
// given the nearest chroma row and the next nearest one.
func vp8UpsampleRow(out, near, far []uint8, w int) {
	out[0] = uint8((3*uint32(near[0]) + uint32(far[0]) + 2) >> 2)
	lastPair := (w - 1) >> 1
	for x := 1; x <= lastPair; x++ {
		n0, n1 := uint32(near[x-1]), uint32(near[x])
		f0, f1 := uint32(far[x-1]), uint32(far[x])
		avg := n0 + n1 + f0 + f1 + 8
		diagA := (avg + 2*(n1+f0)) >> 3
		diagB := (avg + 2*(n0+f1)) >> 3
		out[2*x-1] = uint8((diagA + n0) >> 1)
		out[2*x] = uint8((diagB + n1) >> 1)
	}
	if w&1 == 0 {
		n, f := uint32(near[lastPair]), uint32(far[lastPair])
		out[w-1] = uint8((3*n + f + 2) >> 2)
	}
}
