package sharding

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// TestCutterMatchesPlan checks that cutting a sorted stream gives the
// shards Plan gives, repeated keys dropped, and that disorder is an error.
func TestCutterMatchesPlan(t *testing.T) {
	var items []Item
	for i := range 23 {
		items = append(items, Item{Key: fmt.Sprintf("k%03d", i), Size: int64(i)})
		if i == 7 {
			items = append(items, Item{Key: "k007", Size: 7})
		}
	}
	want, err := Plan(items, 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []Shard
	c, err := NewCutter(5, func(s Shard) error { got = append(got, s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range items {
		if err := c.Add(item); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cut %+v\nplan %+v", got, want)
	}
	if c.Shards() != 5 || c.Images() != 23 {
		t.Errorf("counted %d shards, %d images; want 5, 23", c.Shards(), c.Images())
	}
	if err := c.Add(Item{Key: "a"}); !errors.Is(err, ErrUnsorted) {
		t.Errorf("out-of-order key: %v, want ErrUnsorted", err)
	}
}
