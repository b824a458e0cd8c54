package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
)

func TestReadFixtureCheckpoint(t *testing.T) {
	d, err := OpenDir(fixtures.Path("opt-tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	data, shape, err := d.Float32("vision_model.embeddings.patch_embedding.weight")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{32, 3, 14, 14}; !equalInts(shape, want) || len(data) != 32*3*14*14 {
		t.Fatalf("shape %v len %d, want %v", shape, len(data), want)
	}
	if _, _, err := d.Float32("no.such.tensor"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no.such.tensor") {
		t.Fatalf("missing tensor error = %v", err)
	}
}

// raw builds a safetensors image from a header and data section.
func raw(t *testing.T, header map[string]any, data []byte) []byte {
	t.Helper()
	js, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	return append(append(out, js...), data...)
}

func TestHalfPrecision(t *testing.T) {
	vals := []float32{1, -2.5, 0.333251953125, 65504, 6.103515625e-05, 5.960464477539063e-08, 0}
	f16 := []uint16{0x3c00, 0xc100, 0x3555, 0x7bff, 0x0400, 0x0001, 0x0000}
	var b16, bbf []byte
	for i, v := range vals {
		b16 = binary.LittleEndian.AppendUint16(b16, f16[i])
		bbf = binary.LittleEndian.AppendUint16(bbf, uint16(math.Float32bits(v)>>16))
	}
	n := len(vals)
	buf := raw(t, map[string]any{
		"h": map[string]any{"dtype": "F16", "shape": []int{n}, "data_offsets": []int{0, 2 * n}},
		"b": map[string]any{"dtype": "BF16", "shape": []int{n}, "data_offsets": []int{2 * n, 4 * n}},
	}, append(b16, bbf...))
	f, err := Parse("mem", buf)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := f.Float32("h")
	if err != nil {
		t.Fatal(err)
	}
	bf, _, _ := f.Float32("b")
	for i, v := range vals {
		if h[i] != v {
			t.Errorf("f16 %d: got %g want %g", i, h[i], v)
		}
		want := math.Float32frombits(math.Float32bits(v) &^ 0xffff)
		if bf[i] != want {
			t.Errorf("bf16 %d: got %g want %g", i, bf[i], want)
		}
	}
}

func TestBadFiles(t *testing.T) {
	good := raw(t, map[string]any{"w": map[string]any{"dtype": "F32", "shape": []int{2, 2}, "data_offsets": []int{0, 16}}}, make([]byte, 16))
	cases := []struct {
		name string
		buf  []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"short length", []byte{1, 2, 3}, "truncated"},
		{"header past end", good[:20], "truncated"},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, 1<<40), "exceeds"},
		{"corrupt json", append(binary.LittleEndian.AppendUint64(nil, 5), []byte("{nope")...), "corrupt header"},
		{"unknown dtype", raw(t, map[string]any{"w": map[string]any{"dtype": "Q4", "shape": []int{1}, "data_offsets": []int{0, 1}}}, []byte{0}), `"w": unknown dtype`},
		{"offsets out of range", raw(t, map[string]any{"w": map[string]any{"dtype": "F32", "shape": []int{4}, "data_offsets": []int{0, 16}}}, make([]byte, 8)), "out of range"},
		{"size mismatch", raw(t, map[string]any{"w": map[string]any{"dtype": "F32", "shape": []int{3}, "data_offsets": []int{0, 16}}}, make([]byte, 16)), "want 12"},
		{"truncated data", good[:len(good)-4], "out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.safetensors", c.buf)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.safetensors") {
				t.Fatalf("error = %v, want one naming the file and containing %q", err, c.want)
			}
		})
	}
}

func TestWriteAndShardedDir(t *testing.T) {
	dir := t.TempDir()
	a := Tensor{Name: "a.weight", Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}
	b := Tensor{Name: "b.bias", Shape: []int{2}, Data: []float32{-1, 0.5}}
	if err := WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), []Tensor{a}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), []Tensor{b}, nil); err != nil {
		t.Fatal(err)
	}
	index := `{"metadata":{},"weight_map":{"a.weight":"model-00001-of-00002.safetensors","b.bias":"model-00002-of-00002.safetensors"}}`
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(index), 0o644)
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, want := range []Tensor{a, b} {
		got, shape, err := d.Float32(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(shape, want.Shape) || len(got) != len(want.Data) {
			t.Fatalf("%s: shape %v", want.Name, shape)
		}
		for i := range got {
			if got[i] != want.Data[i] {
				t.Fatalf("%s[%d] = %g want %g", want.Name, i, got[i], want.Data[i])
			}
		}
	}
	if err := WriteFile(filepath.Join(dir, "x.safetensors"), []Tensor{{Name: "x", Shape: []int{3}, Data: []float32{1}}}, nil); err == nil {
		t.Fatal("shape/data mismatch accepted")
	}
	// An index that names a missing shard is an error naming the shard.
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"weight_map":{"c":"gone.safetensors"}}`), 0o644)
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "gone.safetensors") {
		t.Fatalf("missing shard error = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile(fixtures.Path("itm-tiny", "model", "model.safetensors"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed[:4096])
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	f.Add(binary.LittleEndian.AppendUint64(nil, 60))
	f.Fuzz(func(t *testing.T, buf []byte) {
		file, err := Parse("fuzz", buf)
		if err != nil {
			return
		}
		for _, n := range file.Names() {
			file.Float32(n) // must not panic for any header that parsed
		}
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRawBF16AndRelease(t *testing.T) {
	vals := []uint16{0x3f80, 0xc020, 0x0001, 0x7f80}
	var data []byte
	for _, v := range vals {
		data = binary.LittleEndian.AppendUint16(data, v)
	}
	data = append(data, make([]byte, 8)...)
	buf := raw(t, map[string]any{
		"b": map[string]any{"dtype": "BF16", "shape": []int{2, 2}, "data_offsets": []int{0, 8}},
		"f": map[string]any{"dtype": "F32", "shape": []int{2}, "data_offsets": []int{8, 16}},
	}, data)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, shape, err := d.BF16("b")
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(shape, []int{2, 2}) || len(got) != 4 {
		t.Fatalf("shape %v len %d", shape, len(got))
	}
	for i := range vals {
		if got[i] != vals[i] {
			t.Errorf("value %d: %#x, want %#x", i, got[i], vals[i])
		}
	}
	if _, _, err := d.BF16("f"); err == nil || !strings.Contains(err.Error(), `"f" is F32`) {
		t.Fatalf("reading F32 as BF16: %v", err)
	}
	if err := d.Release("b"); err != nil {
		t.Fatal(err)
	}
	// Released pages fault in again from the file.
	if again, _, _ := d.BF16("b"); again[1] != 0xc020 {
		t.Fatalf("after release: %#x", again[1])
	}
}
