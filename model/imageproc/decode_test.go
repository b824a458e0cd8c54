package imageproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"blipflow/internal/fixtures"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(fixtures.Path("images", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// pngHeader returns a PNG signature and IHDR chunk claiming w×h RGB pixels,
// with no image data after it.
func pngHeader(w, h uint32) []byte {
	var ihdr bytes.Buffer
	ihdr.WriteString("IHDR")
	binary.Write(&ihdr, binary.BigEndian, w)
	binary.Write(&ihdr, binary.BigEndian, h)
	ihdr.Write([]byte{8, 2, 0, 0, 0}) // 8-bit truecolour, no interlace
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	binary.Write(&out, binary.BigEndian, uint32(ihdr.Len()-4))
	out.Write(ihdr.Bytes())
	binary.Write(&out, binary.BigEndian, crc32.ChecksumIEEE(ihdr.Bytes()))
	return out.Bytes()
}

func TestDecodeErrorsNameTheInput(t *testing.T) {
	p := referenceProcessor(t)
	astronaut := readFixture(t, "astronaut.png")
	rocket := readFixture(t, "rocket.jpg")
	corrupt := bytes.Clone(astronaut)
	for i := 100; i < 200; i++ {
		corrupt[i] ^= 0x5a
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		target error
	}{
		{"empty.png", nil, nil},
		{"text.jpg", []byte("this is not an image at all"), ErrUnknownFormat},
		{"truncated.png", astronaut[:len(astronaut)/2], nil},
		{"truncated.jpg", rocket[:len(rocket)/3], nil},
		{"header-only.jpg", rocket[:2], nil},
		{"corrupt.png", corrupt, nil},
		{"bomb.png", pngHeader(100000, 100000), ErrTooManyPixels},
		{"zero-width.png", pngHeader(0, 10), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Bytes("dir/"+tc.name, tc.data)
			if err == nil {
				t.Fatal("no error")
			}
			want := `imageproc: decode "dir/` + tc.name + `": `
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Errorf("error %q is not %v", err, tc.target)
			}
		})
	}
}

func TestPixelLimitIsConfigurable(t *testing.T) {
	cfg := DefaultConfig()
	small, err := New(cfg, Options{MaxPixels: 512*512 - 1})
	if err != nil {
		t.Fatal(err)
	}
	data := readFixture(t, "astronaut.png") // 512×512
	if _, err := small.DecodeBytes("astronaut.png", data); !errors.Is(err, ErrTooManyPixels) {
		t.Fatalf("512x512 image under a smaller limit: got %v", err)
	}
	exact, err := New(cfg, Options{MaxPixels: 512 * 512})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exact.DecodeBytes("astronaut.png", data); err != nil {
		t.Fatalf("512x512 image at the limit: %v", err)
	}
	if _, err := New(cfg, Options{MaxPixels: -1}); err == nil {
		t.Error("negative MaxPixels accepted")
	}
}

func TestFileErrors(t *testing.T) {
	p := referenceProcessor(t)
	missing := filepath.Join(t.TempDir(), "missing.jpg")
	_, err := p.File(missing)
	if err == nil || !strings.Contains(err.Error(), `"`+missing+`"`) {
		t.Fatalf("missing file: got %v", err)
	}
}

// TestDecodeFormats round-trips a small image through every encoder Go has
// and decodes the two WebP kinds.
func TestDecodeFormats(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 9, 7))
	for y := range 7 {
		for x := range 9 {
			src.SetNRGBA(x, y, color.NRGBA{uint8(x * 28), uint8(y * 36), 200, 255})
		}
	}
	// GIF needs a palette; every colour of src fits in one exactly.
	var palette color.Palette
	for y := range 7 {
		for x := range 9 {
			palette = append(palette, src.At(x, y))
		}
	}
	paletted := image.NewPaletted(src.Rect, palette)
	for y := range 7 {
		for x := range 9 {
			paletted.Set(x, y, src.At(x, y))
		}
	}
	encode := map[string]func(*bytes.Buffer) error{
		"png":  func(b *bytes.Buffer) error { return png.Encode(b, src) },
		"jpeg": func(b *bytes.Buffer) error { return jpeg.Encode(b, src, &jpeg.Options{Quality: 95}) },
		"gif":  func(b *bytes.Buffer) error { return gif.Encode(b, paletted, nil) },
		"bmp":  func(b *bytes.Buffer) error { return bmp.Encode(b, src) },
		"tiff": func(b *bytes.Buffer) error { return tiff.Encode(b, src, nil) },
	}
	p := referenceProcessor(t)
	for name, enc := range encode {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := enc(&buf); err != nil {
				t.Fatal(err)
			}
			img, err := p.Decode("x."+name, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if img.Bounds() != src.Rect {
				t.Fatalf("bounds %v, want %v", img.Bounds(), src.Rect)
			}
			var sc rgbScratch
			rgb := toRGB(nil, img, &sc)
			// Lossless formats keep every sample; JPEG comes close.
			tol := 0
			if name == "jpeg" {
				tol = 24
			}
			for i, v := range rgb {
				want := src.Pix[i/3*4+i%3]
				if d := int(v) - int(want); d > tol || d < -tol {
					t.Fatalf("sample %d = %d, want %d±%d", i, v, want, tol)
				}
			}
		})
	}
	for _, name := range []string{"blue-purple-pink.lossy.webp", "gopher-doc.8bpp.lossless.webp"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			out, err := p.Bytes(name, data)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 3*224*224 {
				t.Fatalf("%d values", len(out))
			}
		})
	}
}

// TestLossyWebPUsesLimitedRange checks that VP8 planes go through libwebp's
// BT.601 studio-swing conversion: Y=16 is black and Y=235 white.
func TestLossyWebPUsesLimitedRange(t *testing.T) {
	for _, tc := range []struct {
		y, u, v uint8
		want    [3]uint8
	}{
		{16, 128, 128, [3]uint8{0, 0, 0}},
		{235, 128, 128, [3]uint8{255, 255, 255}},
		{126, 128, 128, [3]uint8{128, 128, 128}},
		{81, 90, 240, [3]uint8{255, 0, 0}},
	} {
		r, g, b := vp8ToRGB(tc.y, tc.u, tc.v)
		got := [3]uint8{r, g, b}
		for i := range 3 {
			if d := int(got[i]) - int(tc.want[i]); d > 1 || d < -1 {
				t.Errorf("YUV %d,%d,%d -> %v, want %v", tc.y, tc.u, tc.v, got, tc.want)
				break
			}
		}
	}
	data, err := os.ReadFile(filepath.Join("testdata", "blue-purple-pink.lossy.webp"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := referenceProcessor(t).DecodeBytes("lossy.webp", data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := img.(*image.NRGBA); !ok {
		t.Fatalf("lossy WebP decoded to %T, want converted *image.NRGBA", img)
	}
}
