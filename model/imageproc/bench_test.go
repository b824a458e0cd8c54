package imageproc

import (
	"testing"
)

// reportThroughput adds images/s (wall clock, one core with -cpu 1) and
// images/cpu-s (per CPU-second used by the process, which stays meaningful
// when other work shares the machine).
func reportThroughput(b *testing.B, images int, cpuStart float64) {
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
	if cpu := processCPUSeconds() - cpuStart; cpu > 0 && cpuStart > 0 {
		b.ReportMetric(float64(images)/cpu, "images/cpu-s")
	}
}

// BenchmarkDecodePreprocess measures decode+preprocess throughput over the
// four photographs: each alone, and all four in turn.
func BenchmarkDecodePreprocess(b *testing.B) {
	p := referenceProcessor(b)
	names := []string{"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"}
	files := make([][]byte, len(names))
	for i, name := range names {
		files[i] = readFixture(b, name)
	}
	for i, name := range names {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPUSeconds()
			for b.Loop() {
				if _, err := p.Bytes(name, files[i]); err != nil {
					b.Fatal(err)
				}
			}
			reportThroughput(b, b.N, cpu)
		})
	}
	b.Run("all4", func(b *testing.B) {
		b.ReportAllocs()
		cpu := processCPUSeconds()
		n := 0
		for b.Loop() {
			if _, err := p.Bytes(names[n%4], files[n%4]); err != nil {
				b.Fatal(err)
			}
			n++
		}
		reportThroughput(b, n, cpu)
	})
}

// BenchmarkPreprocess measures RGB conversion, resize and normalisation
// alone on already decoded images.
func BenchmarkPreprocess(b *testing.B) {
	p := referenceProcessor(b)
	for _, name := range []string{"astronaut.png", "rocket.jpg"} {
		img, err := p.DecodeBytes(name, readFixture(b, name))
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]float32, 3*224*224)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPUSeconds()
			for b.Loop() {
				if err := p.PreprocessInto(dst, img); err != nil {
					b.Fatal(err)
				}
			}
			reportThroughput(b, b.N, cpu)
		})
	}
}
