package imageproc

import (
	"encoding/binary"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/safetensors"
)

// referenceProcessor loads the fixture's processor settings.
func referenceProcessor(t testing.TB) *Processor {
	t.Helper()
	cfg, err := LoadConfig(fixtures.Path("preprocess"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// golden opens the reference pixel_values file.
func golden(t testing.TB) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(fixtures.Path("preprocess", "pixel_values.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// goldenKey is the fixture's tensor name suffix for an image file name.
func goldenKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

type errorStats struct {
	max, mean float64
	over      int // values off by more than one 8-bit level after normalisation
}

func compare(t *testing.T, got, want []float32) errorStats {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	var s errorStats
	sum := 0.0
	for i := range got {
		d := math.Abs(float64(got[i] - want[i]))
		sum += d
		s.max = math.Max(s.max, d)
		if d > 0.02 {
			s.over++
		}
	}
	s.mean = sum / float64(len(got))
	return s
}

func TestMatchesReferencePNG(t *testing.T) {
	p := referenceProcessor(t)
	ref := golden(t)
	for _, name := range []string{"astronaut.png", "chelsea.png", "coffee.png", "gray.png", "noise.png", "rgba.png"} {
		t.Run(name, func(t *testing.T) {
			got, err := p.File(fixtures.Path("images", name))
			if err != nil {
				t.Fatal(err)
			}
			want, shape, err := ref.Float32("pixel_values." + goldenKey(name))
			if err != nil {
				t.Fatal(err)
			}
			if len(shape) != 3 || shape[0] != 3 || shape[1] != 224 || shape[2] != 224 {
				t.Fatalf("reference shape %v", shape)
			}
			s := compare(t, got, want)
			t.Logf("%s: max abs error %.6f, mean %.3g", name, s.max, s.mean)
			if s.max > 0.02 {
				t.Errorf("%s: max abs error %.4f > 0.02 (%d values)", name, s.max, s.over)
			}
		})
	}
}

// TestMatchesReferenceJPEG checks the two JPEG fixtures and reports how much
// of the difference comes from the decoder: the decoded RGB against the
// reference decoder's (libjpeg-turbo via Pillow) and the final tensor.
func TestMatchesReferenceJPEG(t *testing.T) {
	p := referenceProcessor(t)
	ref := golden(t)
	for _, tc := range []struct {
		name string
		// Loose bounds that the current decoder passes with margin.
		maxRGB, maxPixel, meanPixel float64
	}{
		{"rocket.jpg", 8, 0.1, 0.005},
		{"wide.jpg", 8, 0.1, 0.005},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(fixtures.Path("images", tc.name))
			if err != nil {
				t.Fatal(err)
			}
			img, err := p.DecodeBytes(tc.name, data)
			if err != nil {
				t.Fatal(err)
			}
			var sc rgbScratch
			rgb := toRGB(nil, img, &sc)
			wantRGB, shape, err := ref.Float32("rgb." + goldenKey(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			b := img.Bounds()
			if shape[0] != b.Dy() || shape[1] != b.Dx() || shape[2] != 3 {
				t.Fatalf("decoded %dx%d, reference %v", b.Dx(), b.Dy(), shape)
			}
			var rgbMax, rgbSum float64
			rgbDiff := 0
			for i, v := range rgb {
				d := math.Abs(float64(v) - float64(wantRGB[i]))
				rgbMax = math.Max(rgbMax, d)
				rgbSum += d
				if d != 0 {
					rgbDiff++
				}
			}
			got, err := p.Preprocess(img)
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := ref.Float32("pixel_values." + goldenKey(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			s := compare(t, got, want)
			t.Logf("%s: decoded RGB vs libjpeg: max %.0f levels, mean %.4f, %.2f%% of samples differ; pixel_values: max abs error %.4f, mean %.5f, %d values > 0.02",
				tc.name, rgbMax, rgbSum/float64(len(rgb)), 100*float64(rgbDiff)/float64(len(rgb)), s.max, s.mean, s.over)
			if rgbMax > tc.maxRGB || s.max > tc.maxPixel || s.mean > tc.meanPixel {
				t.Errorf("%s: error above bounds (rgb %.0f > %.0f, max %.4f > %.4f or mean %.5f > %.5f)",
					tc.name, rgbMax, tc.maxRGB, s.max, tc.maxPixel, s.mean, tc.meanPixel)
			}
		})
	}
}

// TestPillowArithmetic checks the Pillow variant of the resampler: it stays
// within two 8-bit levels of the reference (which runs torch's kernel) and
// does differ from it somewhere, so the option is wired through.
func TestPillowArithmetic(t *testing.T) {
	cfg, err := LoadConfig(fixtures.Path("preprocess"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, Options{Arithmetic: PillowArithmetic})
	if err != nil {
		t.Fatal(err)
	}
	ref := golden(t)
	differs := false
	for _, name := range []string{"astronaut.png", "noise.png"} {
		got, err := p.File(fixtures.Path("images", name))
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := ref.Float32("pixel_values." + goldenKey(name))
		if err != nil {
			t.Fatal(err)
		}
		s := compare(t, got, want)
		t.Logf("%s with Pillow arithmetic: max abs error %.4f, mean %.3g", name, s.max, s.mean)
		if s.max > 0.035 {
			t.Errorf("%s: max abs error %.4f", name, s.max)
		}
		differs = differs || s.max > 0
	}
	if !differs {
		t.Error("Pillow arithmetic gave the torch results exactly")
	}
	if _, err := New(cfg, Options{Arithmetic: Arithmetic(7)}); err == nil {
		t.Error("unknown arithmetic accepted")
	}
}

func TestBatch(t *testing.T) {
	p := referenceProcessor(t)
	paths := []string{fixtures.Path("images", "chelsea.png"), fixtures.Path("images", "rocket.jpg")}
	batch, shape, err := p.BatchFiles(paths)
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 4 || shape[0] != 2 || shape[1] != 3 || shape[2] != 224 || shape[3] != 224 {
		t.Fatalf("shape %v", shape)
	}
	for i, path := range paths {
		one, err := p.File(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(float32Bytes(one)) != string(float32Bytes(batch[i*len(one):(i+1)*len(one)])) {
			t.Errorf("batch slot %d differs from %s alone", i, path)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.png")
	if err := os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nnope"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.BatchFiles([]string{paths[0], bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad image in batch: got %v", err)
	}

	// Images resizing to different sizes cannot share a batch.
	cfg := DefaultConfig()
	cfg.Size = Size{ShortestEdge: 32}
	short, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := short.DecodeBytes("a", readFixture(t, "wide.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := short.DecodeBytes("b", readFixture(t, "astronaut.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := short.Batch([]image.Image{a, b}); err == nil {
		t.Error("mixed output sizes accepted")
	}
	out, err := short.Preprocess(a)
	if err != nil {
		t.Fatal(err)
	}
	if s := short.Shape(640, 240); len(out) != s[0]*s[1]*s[2] || s[1] != 32 || s[2] != 85 {
		t.Errorf("shortest_edge output %d values, shape %v", len(out), s)
	}
}

// TestNoResize covers configs that skip resizing or keep one dimension.
func TestNoResize(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 10)
	}
	cfg := DefaultConfig()
	cfg.DoResize = false
	cfg.DoNormalize = false
	p, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Preprocess(img)
	if err != nil {
		t.Fatal(err)
	}
	for c := range 3 {
		for i, v := range img.Pix {
			if want := float32(v) * float32(1.0/255); out[c*15+i] != want {
				t.Fatalf("channel %d pixel %d = %v, want %v", c, i, out[c*15+i], want)
			}
		}
	}
	// Same height, new width: only the horizontal pass runs; a constant
	// image stays constant.
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	cfg.DoResize = true
	cfg.Size = Size{Height: 3, Width: 11}
	p, err = New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err = p.Preprocess(img)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v != float32(200)*float32(1.0/255) {
			t.Fatalf("value %d = %v", i, v)
		}
	}
	if err := p.PreprocessInto(make([]float32, 5), img); err == nil {
		t.Error("short destination accepted")
	}
}

func float32Bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}
