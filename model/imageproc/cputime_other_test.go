//go:build !unix

package imageproc

// processCPUSeconds is unavailable here; benchmarks then report wall time
// only.
func processCPUSeconds() float64 { return 0 }
