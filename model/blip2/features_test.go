package blip2

import (
	"context"
	"strings"
	"testing"

	"blipflow/model/blas"
)

func TestFeaturesParity(t *testing.T) {
	for _, name := range []string{"opt-tiny", "t5-tiny"} {
		g := loadGolden(t, name)
		for bname, b := range backends(t) {
			t.Run(name+"/"+bname, func(t *testing.T) {
				m := loadModel(t, name, b)
				for _, c := range g.Cases {
					if c.Name != "c6" {
						continue
					}
					f, err := m.ImageFeatures(context.Background(), imagesPixels(t, g, c.Name, 1), 1)
					if err != nil {
						t.Fatal(err)
					}
					assertClose(t, "c6.get_image_features", f.Image, g.tensor(t, "c6.get_image_features"))
					assertClose(t, "c6.get_qformer_features", f.Queries, g.tensor(t, "c6.get_qformer_features"))
					mask := [][]int{onesInt(len(c.TextInputIDs[0]))}
					text, err := m.TextFeatures(context.Background(), c.TextInputIDs, mask)
					if err != nil {
						t.Fatal(err)
					}
					assertClose(t, "c6.get_text_features", text, g.tensor(t, "c6.get_text_features"))
				}
			})
		}
	}
}

// TestTextFeaturesPadding checks that padding a row leaves the hidden
// states of its real tokens as they are without padding (right padding:
// OPT is causal, T5's encoder masks the padding out).
func TestTextFeaturesPadding(t *testing.T) {
	for _, name := range []string{"opt-tiny", "t5-tiny"} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, name, blas.Gonum{})
			long, short := []int{5, 17, 9, 33, 2, 8}, []int{5, 17, 9}
			alone, err := m.TextFeatures(context.Background(), [][]int{short}, [][]int{onesInt(len(short))})
			if err != nil {
				t.Fatal(err)
			}
			padded := append(append([]int(nil), short...), 0, 0, 0)
			batch, err := m.TextFeatures(context.Background(), [][]int{long, padded}, [][]int{onesInt(6), {1, 1, 1, 0, 0, 0}})
			if err != nil {
				t.Fatal(err)
			}
			d := len(alone) / len(short)
			row := batch[6*d:]
			assertClose(t, name+" padded row", row[:len(short)*d], alone)
		})
	}
}

func TestTextFeaturesErrors(t *testing.T) {
	opt := loadModel(t, "opt-tiny", blas.Gonum{})
	itm := loadModel(t, "itm-tiny", blas.Gonum{})
	for _, tc := range []struct {
		name      string
		m         *Model
		ids, mask [][]int
		want      string
	}{
		{"no tokens", opt, nil, nil, "no tokens"},
		{"mask rows", opt, [][]int{{1, 2}}, nil, "mask rows"},
		{"ragged", opt, [][]int{{1, 2}, {1}}, [][]int{{1, 1}, {1}}, "row 1"},
		{"no language model", itm, [][]int{{1}}, [][]int{{1}}, "language_projection.weight"},
	} {
		_, err := tc.m.TextFeatures(context.Background(), tc.ids, tc.mask)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}
