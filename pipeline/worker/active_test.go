package worker

import (
	"testing"

	"blipflow/pipeline/jobstate"
)

// TestBlamed checks which deaths put an image at fault: one image processed
// alone on purpose (a tracked decode, a suspect's model run), and not one
// image seen at the model in an ordinary batch (its batch may have held
// other shards' images, and the kill may have come from outside) or a
// death among several images.
func TestBlamed(t *testing.T) {
	for _, c := range []struct {
		name   string
		images map[string]string
		want   string
	}{
		{"large decode", map[string]string{"a.png": stepDecode}, "a.png"},
		{"suspect alone at the model", map[string]string{"a.png": stepModelAlone}, "a.png"},
		{"one image of a batch at the model", map[string]string{"a.png": stepModel}, ""},
		{"several at the model", map[string]string{"a.png": stepModel, "b.png": stepModel}, ""},
		{"several decodes", map[string]string{"a.png": stepDecode, "b.png": stepDecode}, ""},
		{"nothing", map[string]string{}, ""},
	} {
		if got := blamed(jobstate.Active{Worker: "w", Delivery: 1, Images: c.images}); got != c.want {
			t.Errorf("%s: blamed = %q, want %q", c.name, got, c.want)
		}
	}
}
