package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestParseTask(t *testing.T) {
	tests := []struct {
		name, prompt string
		want         Task
		wantErr      bool
	}{
		{"caption", "a photo of", Task{Caption: true, Prompt: "a photo of"}, false},
		{"", "", Task{Caption: true}, false},
		{"embed", "", Task{Embed: true}, false},
		{"embed", "a photo of", Task{}, true},
		{"BOTH", "", Task{Caption: true, Embed: true}, false},
		{"describe", "", Task{}, true},
	}
	for _, tt := range tests {
		got, err := ParseTask(tt.name, tt.prompt)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseTask(%q, %q) = %+v, %v; want %+v, error %v", tt.name, tt.prompt, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			if again, _ := ParseTask(got.Name(), got.Prompt); again != got {
				t.Errorf("ParseTask(%q).Name() = %q does not round-trip", tt.name, got.Name())
			}
		}
	}
}

func TestLoadModel(t *testing.T) {
	ctx := context.Background()
	m, err := LoadModel(ctx, "nop:fail=poison,delay=5ms", ModelConfig{})
	if err != nil {
		t.Fatal(err)
	}
	nop, ok := m.(*NopModel)
	if !ok || nop.FailOn != "poison" || nop.Delay != 5*time.Millisecond {
		t.Fatalf("LoadModel = %#v", m)
	}
	for _, bad := range []string{"", "nop:fail=", "nop:delay=soon", "nop:color=red", "/no/checkpoints/here"} {
		if _, err := LoadModel(ctx, bad, ModelConfig{}); err == nil {
			t.Errorf("LoadModel(%q): no error", bad)
		}
	}
	called := ""
	_, err = LoadModel(ctx, "/ckpt", ModelConfig{Checkpoint: func(_ context.Context, dir string) (Model, error) {
		called = dir
		return &NopModel{}, nil
	}})
	if err != nil || called != "/ckpt" {
		t.Errorf("checkpoint loader called with %q, err %v", called, err)
	}
}

func TestNopModelRun(t *testing.T) {
	m := &NopModel{FailOn: "poison"}
	batch := []Image{{Key: "a.png", Pixels: []float32{1, 2}}, {Key: "b.png", Pixels: []float32{1, 3}}}
	res, err := m.Run(context.Background(), Task{Caption: true, Embed: true}, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Captions[0] == res[1].Captions[0] || len(res[0].Embedding) != NopEmbeddingDim {
		t.Fatalf("results %+v", res)
	}
	alone, _ := m.Run(context.Background(), Task{Caption: true}, batch[1:])
	if alone[0].Captions[0] != res[1].Captions[0] {
		t.Errorf("caption depends on the batch: %q vs %q", alone[0].Captions[0], res[1].Captions[0])
	}
	_, err = m.Run(context.Background(), Task{Caption: true}, []Image{{Key: "x/poison.png"}})
	if !errors.Is(err, ErrPoisoned) {
		t.Errorf("poisoned key: err %v, want ErrPoisoned", err)
	}
}
