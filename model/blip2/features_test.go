package blip2

import "testing"

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
					f, err := m.ImageFeatures(imagesPixels(t, g, c.Name, 1), 1)
					if err != nil {
						t.Fatal(err)
					}
					assertClose(t, "c6.get_image_features", f.Image, g.tensor(t, "c6.get_image_features"))
					assertClose(t, "c6.get_qformer_features", f.Queries, g.tensor(t, "c6.get_qformer_features"))
					mask := [][]int{onesInt(len(c.TextInputIDs[0]))}
					text, err := m.TextFeatures(c.TextInputIDs, mask)
					if err != nil {
						t.Fatal(err)
					}
					assertClose(t, "c6.get_text_features", text, g.tensor(t, "c6.get_text_features"))
				}
			})
		}
	}
}
