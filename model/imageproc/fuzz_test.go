package imageproc

import (
	"os"
	"path/filepath"
	"testing"

	"blipflow/internal/fixtures"
)

// FuzzDecode feeds arbitrary bytes to the decode entry point and, when they
// decode, to the preprocessor: neither may panic.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		fixtures.Path("images", "tiny.png"),
		fixtures.Path("images", "gray.png"),
		fixtures.Path("images", "rgba.png"),
		fixtures.Path("images", "wide.jpg"),
		filepath.Join("testdata", "blue-purple-pink.lossy.webp"),
		filepath.Join("testdata", "gopher-doc.8bpp.lossless.webp"),
	}
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte{})
	f.Add(pngHeader(1<<20, 1<<20))
	cfg := DefaultConfig()
	cfg.Size = Size{Height: 16, Width: 16}
	// A small limit keeps hostile headers from allocating much.
	p, err := New(cfg, Options{MaxPixels: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := p.DecodeBytes("fuzz", data)
		if err != nil {
			return
		}
		if _, err := p.Preprocess(img); err != nil {
			t.Fatalf("decoded %T %v but preprocessing failed: %v", img, img.Bounds(), err)
		}
	})
}
