package imageproc

import (
	"image"
	"image/color"
)

// This file turns decoded images into packed 8-bit RGB the way the reference
// pipeline (Pillow + transformers' convert_to_rgb, which calls Pillow's
// convert("RGB")) sees them:
//   - alpha is dropped, keeping the straight (unpremultiplied) colour; the
//     rgba.png fixture confirms the reference does not composite over white;
//   - grayscale is replicated into the three channels;
//   - CMYK uses Pillow's cmyk2rgb;
//   - JPEG YCbCr is upsampled and converted with libjpeg(-turbo)'s default
//     "fancy" triangle-filter chroma upsampling and fixed-point tables, since
//     Pillow decodes JPEG with libjpeg-turbo and Go's image/color uses
//     different rounding and nearest-neighbour chroma;
//   - 16-bit samples keep their high byte.

// cmykToRGB is Pillow's cmyk2rgb for one pixel.
func cmykToRGB(c, m, y, k uint8) (uint8, uint8, uint8) {
	nk := 255 - int32(k)
	f := func(v uint8) uint8 {
		t := int32(v)*nk + 128
		return clampByte(nk - ((t>>8)+t)>>8)
	}
	return f(c), f(m), f(y)
}

func clampByte(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// yccTables are libjpeg's fixed-point YCbCr→RGB lookup tables
// (jdcolor.c build_ycc_rgb_table, SCALEBITS 16).
type yccTables struct {
	crR, cbB   [256]int32
	crG, cbG   [256]int32
	scaleShift uint
}

// jpegYCC is read-only after initialisation.
var jpegYCC = newYCCTables()

func newYCCTables() *yccTables {
	const scaleBits = 16
	const oneHalf = 1 << (scaleBits - 1)
	fix := func(x float64) int32 { return int32(x*(1<<scaleBits) + 0.5) }
	t := &yccTables{scaleShift: scaleBits}
	for i := range 256 {
		x := int32(i - 128)
		t.crR[i] = (fix(1.40200)*x + oneHalf) >> scaleBits
		t.cbB[i] = (fix(1.77200)*x + oneHalf) >> scaleBits
		t.crG[i] = -fix(0.71414) * x
		t.cbG[i] = -fix(0.34414)*x + oneHalf
	}
	return t
}

// row converts one row of full-resolution Y, Cb, Cr samples to packed RGB.
func (t *yccTables) row(dst, y, cb, cr []uint8) {
	dst = dst[:len(y)*3]
	cb = cb[:len(y)]
	cr = cr[:len(y)]
	for i, yy := range y {
		Y := int32(yy)
		b, r := cb[i], cr[i]
		o := dst[i*3 : i*3+3 : i*3+3]
		o[0] = clampByte(Y + t.crR[r])
		o[1] = clampByte(Y + (t.cbG[b]+t.crG[r])>>t.scaleShift)
		o[2] = clampByte(Y + t.cbB[b])
	}
}

// rgbScratch holds reusable row buffers for the conversion.
type rgbScratch struct {
	cb, cr, colSum []uint8
	sums           []int32
}

// toRGB writes img as packed RGB (3 bytes per pixel, rows of width w) into
// dst, growing it if needed, and returns it.
func toRGB(dst []uint8, img image.Image, s *rgbScratch) []uint8 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := w * h * 3
	if cap(dst) < n {
		dst = make([]uint8, n)
	}
	dst = dst[:n]
	switch m := img.(type) {
	case *image.YCbCr:
		if b.Min == (image.Point{}) {
			ycbcrToRGB(dst, m, s)
			return dst
		}
	case *image.RGBA:
		// Go's RGBA is premultiplied; where it is opaque it equals straight
		// RGB, otherwise the generic path below unpremultiplies.
		if copyOpaqueRGBA(dst, m) {
			return dst
		}
	case *image.NRGBA:
		for y := range h {
			in := m.Pix[y*m.Stride : y*m.Stride+w*4]
			out := dst[y*w*3 : (y+1)*w*3]
			for x := range w {
				p := in[x*4 : x*4+4 : x*4+4]
				out[x*3], out[x*3+1], out[x*3+2] = p[0], p[1], p[2]
			}
		}
		return dst
	case *image.Gray:
		for y := range h {
			in := m.Pix[y*m.Stride : y*m.Stride+w]
			out := dst[y*w*3 : (y+1)*w*3]
			for x, v := range in {
				out[x*3], out[x*3+1], out[x*3+2] = v, v, v
			}
		}
		return dst
	case *image.Paletted:
		var lut [256][3]uint8
		for i, c := range m.Palette {
			lut[i] = colorToRGB(c)
		}
		for y := range h {
			in := m.Pix[y*m.Stride : y*m.Stride+w]
			out := dst[y*w*3 : (y+1)*w*3]
			for x, v := range in {
				p := lut[v]
				out[x*3], out[x*3+1], out[x*3+2] = p[0], p[1], p[2]
			}
		}
		return dst
	case *image.CMYK:
		for y := range h {
			in := m.Pix[y*m.Stride : y*m.Stride+w*4]
			out := dst[y*w*3 : (y+1)*w*3]
			for x := range w {
				out[x*3], out[x*3+1], out[x*3+2] = cmykToRGB(in[x*4], in[x*4+1], in[x*4+2], in[x*4+3])
			}
		}
		return dst
	}
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := colorToRGB(img.At(x, y))
			dst[i], dst[i+1], dst[i+2] = p[0], p[1], p[2]
			i += 3
		}
	}
	return dst
}

// copyOpaqueRGBA copies m's colour into dst as packed RGB and reports
// whether every pixel was opaque; if not, dst holds partial data.
func copyOpaqueRGBA(dst []uint8, m *image.RGBA) bool {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	for y := range h {
		i := m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y+y)
		in := m.Pix[i : i+w*4]
		out := dst[y*w*3 : (y+1)*w*3]
		for x := range w {
			p := in[x*4 : x*4+4 : x*4+4]
			if p[3] != 255 {
				return false
			}
			out[x*3], out[x*3+1], out[x*3+2] = p[0], p[1], p[2]
		}
	}
	return true
}

// colorToRGB converts any colour to 8-bit RGB, dropping alpha: 16-bit models
// keep their high byte; CMYK and YCbCr use the reference conversions above.
func colorToRGB(c color.Color) [3]uint8 {
	switch v := c.(type) {
	case color.Gray:
		return [3]uint8{v.Y, v.Y, v.Y}
	case color.CMYK:
		r, g, b := cmykToRGB(v.C, v.M, v.Y, v.K)
		return [3]uint8{r, g, b}
	case color.YCbCr:
		t := jpegYCC
		Y := int32(v.Y)
		return [3]uint8{
			clampByte(Y + t.crR[v.Cr]),
			clampByte(Y + (t.cbG[v.Cb]+t.crG[v.Cr])>>t.scaleShift),
			clampByte(Y + t.cbB[v.Cb]),
		}
	}
	n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
	return [3]uint8{uint8(n.R >> 8), uint8(n.G >> 8), uint8(n.B >> 8)}
}

// ycbcrToRGB converts a JPEG-style YCbCr image with origin (0,0), upsampling
// chroma like libjpeg-turbo with do_fancy_upsampling (its default).
func ycbcrToRGB(dst []uint8, m *image.YCbCr, s *rgbScratch) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := chromaSize(m.SubsampleRatio, w, h)
	s.cb = growBytes(s.cb, max(2*cw, w))
	s.cr = growBytes(s.cr, max(2*cw, w))
	s.sums = growInt32(s.sums, cw)
	for y := range h {
		ylum := m.Y[y*m.YStride : y*m.YStride+w]
		out := dst[y*w*3 : (y+1)*w*3]
		switch m.SubsampleRatio {
		case image.YCbCrSubsampleRatio444:
			jpegYCC.row(out, ylum, m.Cb[y*m.CStride:], m.Cr[y*m.CStride:])
			continue
		case image.YCbCrSubsampleRatio420:
			if cw > 2 {
				near, far := y/2, y/2-1
				if y%2 == 1 {
					far = y/2 + 1
				}
				far = min(max(far, 0), ch-1)
				fancyH2V2(s.cb, m.Cb[near*m.CStride:near*m.CStride+cw], m.Cb[far*m.CStride:far*m.CStride+cw], s.sums)
				fancyH2V2(s.cr, m.Cr[near*m.CStride:near*m.CStride+cw], m.Cr[far*m.CStride:far*m.CStride+cw], s.sums)
				jpegYCC.row(out, ylum, s.cb, s.cr)
				continue
			}
		case image.YCbCrSubsampleRatio422:
			if cw > 2 {
				row := y * m.CStride
				fancyH2V1(s.cb, m.Cb[row:row+cw])
				fancyH2V1(s.cr, m.Cr[row:row+cw])
				jpegYCC.row(out, ylum, s.cb, s.cr)
				continue
			}
		case image.YCbCrSubsampleRatio440:
			near := y / 2
			far, bias := near-1, int32(1)
			if y%2 == 1 {
				far, bias = near+1, 2
			}
			far = min(max(far, 0), ch-1)
			fancyH1V2(s.cb, m.Cb[near*m.CStride:near*m.CStride+cw], m.Cb[far*m.CStride:far*m.CStride+cw], bias)
			fancyH1V2(s.cr, m.Cr[near*m.CStride:near*m.CStride+cw], m.Cr[far*m.CStride:far*m.CStride+cw], bias)
			jpegYCC.row(out, ylum, s.cb, s.cr)
			continue
		}
		// Other ratios (and narrow images) replicate chroma samples, as
		// libjpeg's plain upsamplers do.
		for x := range w {
			ci := m.COffset(x, y)
			s.cb[x], s.cr[x] = m.Cb[ci], m.Cr[ci]
		}
		jpegYCC.row(out, ylum, s.cb, s.cr)
	}
}

// chromaSize is the size of the chroma planes libjpeg works on: the image
// size divided by the subsampling factors, rounded up.
func chromaSize(r image.YCbCrSubsampleRatio, w, h int) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

func growBytes(b []uint8, n int) []uint8 {
	if cap(b) < n {
		return make([]uint8, n)
	}
	return b[:n]
}

func growInt32(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n)
	}
	return b[:n]
}

// fancyH2V2 is libjpeg's h2v2_fancy_upsample for one output row: near is
// the nearest chroma row, far the next nearest (the one above for even
// output rows, below for odd ones). out receives 2*len(near) samples.
func fancyH2V2(out, near, far []uint8, sums []int32) {
	n := len(near)
	sums = sums[:n]
	far = far[:n]
	for i := range n {
		sums[i] = int32(near[i])*3 + int32(far[i])
	}
	out = out[:2*n]
	out[0] = uint8((sums[0]*4 + 8) >> 4)
	out[1] = uint8((sums[0]*3 + sums[1] + 7) >> 4)
	for i := 1; i < n-1; i++ {
		out[2*i] = uint8((sums[i]*3 + sums[i-1] + 8) >> 4)
		out[2*i+1] = uint8((sums[i]*3 + sums[i+1] + 7) >> 4)
	}
	last := n - 1
	out[2*last] = uint8((sums[last]*3 + sums[last-1] + 8) >> 4)
	out[2*last+1] = uint8((sums[last]*4 + 7) >> 4)
}

// fancyH2V1 is libjpeg's h2v1_fancy_upsample for one row.
func fancyH2V1(out, in []uint8) {
	n := len(in)
	out = out[:2*n]
	out[0] = in[0]
	out[1] = uint8((int32(in[0])*3 + int32(in[1]) + 2) >> 2)
	for i := 1; i < n-1; i++ {
		v := int32(in[i]) * 3
		out[2*i] = uint8((v + int32(in[i-1]) + 1) >> 2)
		out[2*i+1] = uint8((v + int32(in[i+1]) + 2) >> 2)
	}
	last := n - 1
	out[2*last] = uint8((int32(in[last])*3 + int32(in[last-1]) + 1) >> 2)
	out[2*last+1] = in[last]
}

// fancyH1V2 is libjpeg's h1v2_fancy_upsample for one output row.
func fancyH1V2(out, near, far []uint8, bias int32) {
	out = out[:len(near)]
	far = far[:len(near)]
	for i, v := range near {
		out[i] = uint8((int32(v)*3 + int32(far[i]) + bias) >> 2)
	}
}
