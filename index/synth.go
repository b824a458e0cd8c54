package index

import (
	"math"
	"math/rand/v2"
)

// Synth generates synthetic multi-vector embeddings with the structure of
// real ones, for benchmarks and tests: a Gaussian mixture of Topics unit
// centres; each image draws a topic and a centre near it, and its Vectors
// unit vectors scatter around that centre (as an image's query tokens look
// at different parts of it). The scatter is anisotropic, as in learnt
// embeddings, whose variance is concentrated in a few directions: the
// variance along the i-th of a random order of the axes falls as 1/(i+1)
// (an effective dimension of about 22 for 256 floats). Everything is a
// pure function of the seed and the image number, so nothing is stored.
type Synth struct {
	Vectors, Dim int
	topics       []float32
	scale        []float64 // per-axis standard deviation of the scatter, unit total variance
	seed         uint64
}

// Spreads of the mixture, as multiples of a unit-norm Gaussian vector.
const (
	synthImageSpread = 0.7 // image centre around its topic
	synthQuerySpread = 0.8 // an image's vectors around its centre
	synthTextSpread  = 0.5 // a text query around one vector of its image
)

// NewSynth returns a generator of images of vectors×dim floats drawn from
// a mixture of topics components.
func NewSynth(vectors, dim, topics int, seed uint64) *Synth {
	s := &Synth{Vectors: vectors, Dim: dim, seed: seed, topics: make([]float32, topics*dim)}
	rng := rand.New(rand.NewPCG(seed, 1<<40))
	s.scale = make([]float64, dim)
	var total float64
	for i, axis := range rng.Perm(dim) {
		s.scale[axis] = 1 / math.Sqrt(float64(i+1))
		total += 1 / float64(i+1)
	}
	for i := range s.scale {
		s.scale[i] /= math.Sqrt(total)
	}
	iso := make([]float64, dim)
	for i := range iso {
		iso[i] = 1 / math.Sqrt(float64(dim))
	}
	for t := range topics {
		gaussUnit(rng, s.topics[t*dim:(t+1)*dim], nil, 1, iso)
	}
	return s
}

// Image writes image i's Vectors×Dim floats into dst.
func (s *Synth) Image(i int, dst []float32) {
	rng := rand.New(rand.NewPCG(s.seed, uint64(i)))
	d := s.Dim
	topic := rng.IntN(len(s.topics) / d)
	centre := make([]float32, d)
	gaussUnit(rng, centre, s.topics[topic*d:(topic+1)*d], synthImageSpread, s.scale)
	for v := range s.Vectors {
		gaussUnit(rng, dst[v*d:(v+1)*d], centre, synthQuerySpread, s.scale)
	}
}

// Query writes a text-like query vector for held-out image i (an image
// that is not in any index built from Image): one of its vectors, moved by
// noise, normalised.
func (s *Synth) Query(i int, dst []float32) {
	img := make([]float32, s.Vectors*s.Dim)
	s.Image(-1-i, img)
	rng := rand.New(rand.NewPCG(s.seed^0x9e3779b97f4a7c15, uint64(i)))
	v := rng.IntN(s.Vectors)
	gaussUnit(rng, dst, img[v*s.Dim:(v+1)*s.Dim], synthTextSpread, s.scale)
}

// gaussUnit sets dst to normalise(around + spread·g) for a Gaussian vector
// g with per-axis standard deviations scale (around nil: zero).
func gaussUnit(rng *rand.Rand, dst, around []float32, spread float64, scale []float64) {
	var norm float64
	for t := range dst {
		x := rng.NormFloat64() * scale[t] * spread
		if around != nil {
			x += float64(around[t])
		}
		dst[t] = float32(x)
		norm += x * x
	}
	inv := float32(1 / math.Sqrt(norm))
	for t := range dst {
		dst[t] *= inv
	}
}
