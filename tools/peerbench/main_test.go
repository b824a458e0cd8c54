package main

import (
	"bytes"
	"strings"
	"testing"
)

const workerOut = `model: blip2-opt-2.7b (random weights), built in 41s
ops: cpu (openblas)
machine: sgemm 343 GFLOP/s (2048³), weights read by sgemv at 31.5 GB/s

                  stage  batch      ms  GFLOP  GFLOP/s  % of sgemm  weights read (ms)
         vision encoder      1  4173.7  520.7    124.8         36%                  -
               q-former      1   105.8   12.7    120.5         35%                  -
    prefill (42 tokens)      1  2025.0  212.2    104.8         31%                337
  decode step (past 42)      8  1258.4   42.4     33.7         10%                337

peak RSS 16.30 GB
`

const torchOut = `{"dtype": "bfloat16", "threads": 2, "stage": "vision encoder", "batch": 1, "ms": 2301.5}
{"dtype": "bfloat16", "threads": 2, "stage": "decode step (past 42)", "batch": 8, "ms": 410.0}
{"dtype": "bfloat16", "threads": 2, "stage": "decode step (past 42)", "batch": 32, "ms": 1170.0}
`

func TestParseAndTable(t *testing.T) {
	ours, err := parseWorker([]byte(workerOut))
	if err != nil || len(ours) != 4 {
		t.Fatalf("parseWorker: %v, %+v", err, ours)
	}
	if ours[2] != (timing{"prefill (42 tokens)", 1, 2025.0}) {
		t.Fatalf("prefill row parsed as %+v", ours[2])
	}
	torch, err := parseTorch([]byte(torchOut))
	if err != nil || len(torch) != 3 {
		t.Fatalf("parseTorch: %v, %+v", err, torch)
	}
	var b bytes.Buffer
	// Two rounds each: the best time per stage is kept.
	slower := append([]timing(nil), ours...)
	slower[0].MS = 9999
	printTable(&b, "bf16", []run{{torch, 7e9}}, []run{{slower, 8e9}, {ours, 7.5e9}})
	out := b.String()
	for _, want := range []string{
		"vision encoder      1           2301.5            4173.7     0.55x",
		"decode step (past 42)     32           1170.0                 -         -",
		"peak RSS (GB)                7.00              8.00     0.88x",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
