package main

import (
	"bytes"
	"regexp"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/blas"
	"blipflow/model/blip2"
	"blipflow/model/nn"
)

func TestCaptionBatches(t *testing.T) {
	sizes, findMax, err := captionBatches("1, 8,32,128,max")
	if err != nil || len(sizes) != 4 || sizes[3] != 128 || !findMax {
		t.Fatalf("captionBatches = %v %v %v", sizes, findMax, err)
	}
	if _, _, err := captionBatches("1,0"); err == nil {
		t.Fatal("batch 0 accepted")
	}
	if s, m, err := captionBatches(""); s != nil || m || err != nil {
		t.Fatal("empty flag is not off")
	}
}

func TestBenchCaptionsPrintsImagesPerSecond(t *testing.T) {
	m, err := blip2.Load(fixtures.Path("opt-tiny", "model"), nn.NewCPU(blas.Gonum{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var out bytes.Buffer
	if err := benchCaptions(&out, m, []int{1, 3}, true, 4, 1, false); err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile(`(?m)^\s*caption\s+(\d+)\s+[0-9.]+\s+[0-9.]+\s*$`).FindAllStringSubmatch(out.String(), -1)
	if len(lines) != 2 || lines[0][1] != "1" || lines[1][1] != "3" {
		t.Fatalf("output:\n%s", out.String())
	}
	if !regexp.MustCompile(`max\s+-\s+\(only on a GPU\)`).MatchString(out.String()) {
		t.Fatalf("no note that max needs a GPU:\n%s", out.String())
	}
}
