// Package dynlib binds the C functions of a shared library loaded at run time
// (with purego, no cgo) to Go function variables.
package dynlib

import (
	"errors"
	"fmt"

	"github.com/ebitengine/purego"
)

// Symbol names a C function and the pointer to the Go function variable
// that calls it.
type Symbol struct {
	Name string
	Fn   any
}

// Bind binds every symbol handle exports and reports, in one error, each
// one it lacks.
func Bind(handle uintptr, symbols ...Symbol) error {
	var missing []error
	for _, s := range symbols {
		addr, err := purego.Dlsym(handle, s.Name)
		if err != nil {
			missing = append(missing, fmt.Errorf("symbol %s: %w", s.Name, err))
			continue
		}
		purego.RegisterFunc(s.Fn, addr)
	}
	return errors.Join(missing...)
}
