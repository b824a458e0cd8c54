package nn

import (
	"math"
	"strings"
	"testing"
)

// typedSource is a TypedSource over in-memory tensors, recording releases.
type typedSource struct {
	f32      map[string][]float32
	bf       map[string][]uint16
	dtypes   map[string]string
	released []string
}

func (s *typedSource) Has(n string) bool           { _, ok := s.dtypes[n]; return ok }
func (s *typedSource) StoredDType(n string) string { return s.dtypes[n] }
func (s *typedSource) Release(n string) error      { s.released = append(s.released, n); return nil }
func (s *typedSource) BF16(n string) ([]uint16, []int, error) {
	return s.bf[n], []int{2, 2}, nil
}
func (s *typedSource) F16(n string) ([]uint16, []int, error) {
	return s.bf[n], []int{2, 2}, nil
}
func (s *typedSource) Float32(n string) ([]float32, []int, error) {
	return s.f32[n], []int{2, 2}, nil
}

func TestLoaderMatrixDTypes(t *testing.T) {
	src := &typedSource{
		f32:    map[string][]float32{"a": {1, -2.5, 1.00390625, 3.0e-3}},
		bf:     map[string][]uint16{"b": {0x3f80, 0x4000, 0x4040, 0x4080}, "h": {0x3c00, 0xc100, 0x3555, 0x0001}},
		dtypes: map[string]string{"a": "F32", "b": "BF16", "c": "I64", "h": "F16"},
	}
	l := NewLoader(src).Matrices(BF16)
	a := l.Matrix("a", 2, 2)
	b := l.Matrix("b", 2, 2)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if a.DType() != BF16 || a.Half.Rows != 2 || a.Half.Cols != 2 {
		t.Fatalf("a: %v %+v", a.DType(), a.Half)
	}
	row := make([]float32, 2)
	a.Row(0, row)
	if row[0] != 1 || row[1] != -2.5 {
		t.Errorf("a row 0 = %v", row)
	}
	a.Row(1, row)
	// 1.00390625 = 1 + 2^-8 is a tie between 1 and 1+2^-7: even rounds down.
	if row[0] != 1 || math.Abs(float64(row[1]-3.0e-3)) > 3.0e-3/256 {
		t.Errorf("a row 1 = %v", row)
	}
	h := l.Matrix("h", 2, 2)
	h.Row(0, row)
	if row[0] != 1 || row[1] != -2.5 {
		t.Errorf("f16 row 0 = %v, want [1 -2.5]", row)
	}
	h.Row(1, row)
	// 0x3555 is 0.333251953125, 0x0001 the smallest f16 subnormal 2^-24:
	// both rounded to 8 significant bits.
	if math.Abs(float64(row[0])-0.333251953125) > 0.333/256 || math.Abs(float64(row[1])-5.960464477539063e-08) > 5.97e-8/256 {
		t.Errorf("f16 row 1 = %v", row)
	}
	if strings.Join(src.released, ",") != "a,b,h" {
		t.Errorf("released %v, want both tensors' pages dropped once packed", src.released)
	}
	if !a.Half.Packed() || !b.Half.Packed() {
		t.Error("bf16 matrices not packed at load")
	}
	b.Row(1, row)
	if row[0] != 3 || row[1] != 4 {
		t.Errorf("b row 1 = %v, want the stored bf16 values [3 4]", row)
	}
	if f := NewLoader(src).Matrix("a", 2, 2); f.DType() != F32 || f.Data[1] != -2.5 {
		t.Errorf("fp32 loader: %v", f.DType())
	}
	bad := NewLoader(src).Matrices(BF16)
	bad.Matrix("c", 2, 2)
	if err := bad.Err(); err == nil || !strings.Contains(err.Error(), `"c"`) || !strings.Contains(err.Error(), "I64") {
		t.Fatalf("I64 tensor: %v, want an error naming the tensor and its dtype", err)
	}
}

func TestRandomSourceBF16(t *testing.T) {
	l := NewLoader(NewRandomSource(1, 0.5)).Matrices(BF16)
	w := l.Matrix("w", 64, 32)
	if w.DType() != BF16 || w.Len() != 64*32 || w.Bytes() != 2*64*32 {
		t.Fatalf("%v %d %d", w.DType(), w.Len(), w.Bytes())
	}
	row := make([]float32, 32)
	nonzero := 0
	for r := 0; r < 64; r++ {
		w.Row(r, row)
		for _, v := range row {
			if v < -0.5 || v > 0.5 {
				t.Fatalf("value %g outside [-0.5,0.5]", v)
			}
			if v != 0 {
				nonzero++
			}
		}
	}
	if nonzero < 64*32-8 {
		t.Errorf("%d nonzero values of %d", nonzero, 64*32)
	}
}
