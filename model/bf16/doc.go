// Package bf16 multiplies fp32 activations by bfloat16 weights with fp32
// accumulation: the matrix products of a model whose weights are held in
// bf16 (half the memory of fp32, and half the bytes to read per product).
//
// An Engine computes out = x·Wᵀ (+ bias) for a weight Matrix W [out][in].
// Load picks the fastest engine this machine runs: the GoEngine alone on
// CPUs with AVX512_BF16 and no AMX (it beats oneDNN there at every m, see
// DefaultSmallRows), otherwise oneDNN when it loads, else the GoEngine:
//
//   - OneDNNEngine: oneDNN 2.x (Debian's libdnnl2, libdnnl.so.2) loaded at
//     run time with purego, no cgo. Its matmul primitive (bf16 source and
//     weights, fp32 bias and result) is created once per shape and cached.
//     It runs the products with more than Options.SmallRows rows; fewer go
//     to the Go kernels below.
//   - GoEngine: this package's kernels. With AVX512_BF16 an assembly kernel
//     built on VDPBF16PS; with AVX-512 or AVX2 only, kernels that widen the
//     weights to fp32 and use FMA; elsewhere portable Go. They read each
//     weight once per group of rows of x (six with VDPBF16PS), at memory
//     speed for a decode step's few rows.
//
// # Weights layout and memory
//
// On first use (or Matrix.Pack) a Matrix's weights are copied into a packed
// layout, blocks of 64 output rows with pairs of k interleaved, and Data is
// released, so the weights are in memory once. The layout is oneDNN's
// BA16a64b2a, the one its avx512_core_bf16 matmul chooses itself, so both
// engines read the same copy. Where oneDNN's best kernel wants another
// layout (it would choose a different implementation given this one), the
// oneDNN engine keeps a second, reordered copy: ReorderedCopies says how
// many.
//
// # Threads
//
// Options.Threads (default GOMAXPROCS) is the number of goroutines the Go
// kernels use and the OpenMP team size of oneDNN. Debian's oneDNN runs on
// OpenMP (libgomp), whose team belongs to the OS thread that calls in: the
// oneDNN engine makes every call from one locked OS thread of its own and
// calls omp_set_num_threads(Threads) there, so OMP_NUM_THREADS does not
// change the team size and goroutines moving between OS threads do not
// create more teams. Products reaching oneDNN from several goroutines take
// turns. Unless OMP_WAIT_POLICY is set, Load sets it to PASSIVE before
// loading oneDNN, so that idle OpenMP threads sleep instead of spinning on
// the cores that the Go kernels and the rest of the model use.
//
// # Accuracy
//
// Products of two bf16 values are exact in fp32 and are summed in fp32, so
// against the exact product of the same bf16 values the error is at most
// about k·2^-24·Σ|x·w|. The oneDNN and AVX512_BF16 paths also round x to
// bf16 (relative error 2^-8 per element), the fp32 kernels do not.
package bf16
