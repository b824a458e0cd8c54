package sharding

import "testing"

func TestWithin(t *testing.T) {
	cases := []struct {
		root, loc string
		want      bool
	}{
		{"/data/set", "/data/set/a/b.png", true},
		{"/data/set", "file:///data/set/b.png", true},
		{"/data/set", "/data/set/../other/b.png", false},
		{"/data/set", "/data/settings/b.png", false},
		{"/data/set", "/etc/shadow", false},
		{"/data/set", "file:///etc/passwd", false},
		{"/data/set", "s3://bucket/data/set/x.png", false},
		{"s3://bucket/data", "s3://bucket/data/x.png", true},
		{"s3://bucket/data", "s3://bucket/data/../secret/x.png", false},
		{"s3://bucket/data", "s3://other/data/x.png", false},
		{"s3://bucket/data", "/data/x.png", false},
		{"/data/set", "ftp://h/x", false},
	}
	for _, c := range cases {
		if got := Within(c.root, c.loc); got != c.want {
			t.Errorf("Within(%q, %q) = %v, want %v", c.root, c.loc, got, c.want)
		}
	}
}
