//go:build !unix

package storage

import "io/fs"

// umask is zero where the system has no file mode creation mask.
func umask() fs.FileMode { return 0 }
