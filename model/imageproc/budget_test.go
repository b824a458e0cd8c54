package imageproc

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"strings"
	"testing"

	"blipflow/internal/pngbomb"
)

func TestDecodeCostFromHeader(t *testing.T) {
	p, err := New(DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var small bytes.Buffer
	if err := pngbomb.Write(&small, 100, 50, pngbomb.Depth16RGBA); err != nil {
		t.Fatal(err)
	}
	cost, err := p.DecodeCost("small.png", small.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(100 * 50 * (8 + 3)); cost != want {
		t.Errorf("16-bit RGBA cost %d, want %d", cost, want)
	}
	if _, err := p.DecodeBytes("small.png", small.Bytes()); err != nil {
		t.Fatalf("small 16-bit PNG: %v", err)
	}

	var prog bytes.Buffer
	if err := jpeg.Encode(&prog, image.NewGray(image.Rect(0, 0, 16, 16)), nil); err != nil {
		t.Fatal(err)
	}
	cost, err = p.DecodeCost("gray.jpg", prog.Bytes())
	if err != nil || cost != 16*16*(1+3) {
		t.Errorf("baseline gray JPEG cost %d (%v), want %d", cost, err, 16*16*4)
	}
}

// The hostile image: 13300×13300 16-bit RGBA, 1.4 GB decoded,
// under the pixel limit. It is refused from its header alone (the
// integration tests decode-check the full, valid file).
func TestHugePNGRefusedBeforeDecoding(t *testing.T) {
	buf := bytes.NewBuffer(pngbomb.Header(13300, 13300, pngbomb.Depth16RGBA))
	p, err := New(DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.DecodeBytes("bomb.png", buf.Bytes())
	if !errors.Is(err, ErrTooManyBytes) {
		t.Fatalf("err %v, want ErrTooManyBytes", err)
	}
	for _, want := range []string{"bomb.png", "13300x13300", "16-bit RGBA", "1 GiB", "1.8 GiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// A smaller limit applies the same way to smaller images.
	p, _ = New(DefaultConfig(), Options{MaxDecodeBytes: 1000})
	var small bytes.Buffer
	_ = pngbomb.Write(&small, 20, 20, pngbomb.Depth8RGB)
	if _, err := p.DecodeBytes("s.png", small.Bytes()); !errors.Is(err, ErrTooManyBytes) {
		t.Fatalf("20x20 RGB under a 1000-byte limit: %v", err)
	}
}

func TestProgressiveJPEGDetected(t *testing.T) {
	baseline := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 2}
	progressive := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc2, 0, 2}
	if progressiveJPEG(baseline) || !progressiveJPEG(progressive) {
		t.Fatal("SOF markers misread")
	}
}
