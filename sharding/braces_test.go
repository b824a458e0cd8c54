package sharding

import (
	"slices"
	"testing"
)

func TestExpandBraces(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
	}{
		{"s3://b/data/{000..003}.tar", []string{"s3://b/data/000.tar", "s3://b/data/001.tar", "s3://b/data/002.tar", "s3://b/data/003.tar"}},
		{"{8..11}", []string{"8", "9", "10", "11"}},
		{"{3..1}", []string{"3", "2", "1"}},
		{"{098..100}", []string{"098", "099", "100"}},
		{"{a,b}-{0..1}.tar", []string{"a-0.tar", "a-1.tar", "b-0.tar", "b-1.tar"}},
		{"x{a,{b,c}}y", []string{"xay", "xby", "xcy"}},
		{"plain.tar", []string{"plain.tar"}},
		{"odd{one}/{1..2}", []string{"odd{one}/1", "odd{one}/2"}},
		{"unclosed{1..2", []string{"unclosed{1..2"}},
	}
	for _, tt := range tests {
		got, err := ExpandBraces(tt.pattern)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ExpandBraces(%q) = %q, %v; want %q", tt.pattern, got, err, tt.want)
		}
	}
	if _, err := ExpandBraces("{0..9999}/{0..9999}"); err == nil {
		t.Error("10^8 names: no error")
	}
}

func TestSplitLocation(t *testing.T) {
	tests := []struct{ location, root, key string }{
		{"s3://bucket/a/b.jpg", "s3://bucket", "a/b.jpg"},
		{"/data/x/y.tar", "/", "data/x/y.tar"},
		{"file:///data/y.tar", "/", "data/y.tar"},
	}
	for _, tt := range tests {
		root, key, err := SplitLocation(tt.location)
		if err != nil || root != tt.root || key != tt.key {
			t.Errorf("SplitLocation(%q) = %q, %q, %v", tt.location, root, key, err)
		}
	}
	for _, bad := range []string{"s3://bucket", "https://h/x.jpg", "gs://b/k", "/"} {
		if _, _, err := SplitLocation(bad); err == nil {
			t.Errorf("SplitLocation(%q): no error", bad)
		}
	}
	if got := Resolve("s3://b/imgs/", "a/1.jpg"); got != "s3://b/imgs/a/1.jpg" {
		t.Errorf("Resolve = %q", got)
	}
	if got := Resolve("s3://b/imgs", "https://h/1.jpg"); got != "https://h/1.jpg" {
		t.Errorf("Resolve of a URL = %q", got)
	}
}
