package main

import (
	"strings"
	"testing"
)

func TestCheckIndexable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     runFlags
		embed bool
		want  string
	}{
		{"local embed job", runFlags{local: true, output: "/tmp/out"}, true, ""},
		{"file URL", runFlags{local: true, output: "file:///tmp/out"}, true, ""},
		{"remote job that waits", runFlags{wait: true, output: "out/"}, true, ""},
		{"caption job", runFlags{local: true, output: "/tmp/out"}, false, "--task embed"},
		{"S3 output", runFlags{local: true, output: "s3://bucket/out"}, true, "s3://bucket/out"},
		{"remote job without waiting", runFlags{output: "out/"}, true, "--wait"},
	} {
		err := checkIndexable(&tc.f, tc.embed)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}
