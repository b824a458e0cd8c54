//go:build unix

package storage

import (
	"io/fs"
	"sync"
	"syscall"
)

// umask returns the process's file mode creation mask, read once. Files
// are written through a temporary file (created 0600), so their final mode
// is set explicitly and must honour the mask as a plain create would.
var umask = sync.OnceValue(func() fs.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return fs.FileMode(m)
})
