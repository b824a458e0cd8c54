package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args     []string
		wantPos  []string
		wantJSON bool
	}{
		{[]string{"job-1"}, []string{"job-1"}, false},
		{[]string{"--json", "job-1"}, []string{"job-1"}, true},
		{[]string{"job-1", "--json"}, []string{"job-1"}, true},
		{[]string{"a", "--json", "b"}, []string{"a", "b"}, true},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("status", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil || !slices.Equal(pos, tt.wantPos) || *asJSON != tt.wantJSON {
			t.Errorf("parseInterspersed(%q) = %q, json %v, %v", tt.args, pos, *asJSON, err)
		}
	}
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterspersed(fs, []string{"job", "--nope"}); err == nil {
		t.Error("unknown flag after the job: no error")
	}
}
