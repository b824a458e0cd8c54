package dynlib

import (
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

func TestBind(t *testing.T) {
	h, err := purego.Dlopen("libm.so.6", purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		t.Fatalf("libm: %v", err)
	}
	var sqrt func(float64) float64
	var absent func()
	err = Bind(h, Symbol{"sqrt", &sqrt}, Symbol{"no_such_function_here", &absent})
	if err == nil || !strings.Contains(err.Error(), "symbol no_such_function_here") {
		t.Fatalf("want the missing symbol named, got %v", err)
	}
	if sqrt == nil || sqrt(16) != 4 {
		t.Fatal("sqrt was not bound though libm has it")
	}
}
