// Prelude for checking the kernel sources with clang alone (no CUDA
// installation): the declarations NVRTC has built in, defined with clang's
// NVPTX builtins or declared as external device functions. Used only by the
// CI test (kernels_clang_test.go); NVRTC never sees this file.
#include <__clang_cuda_builtin_vars.h>

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __forceinline__ __inline__ __attribute__((always_inline))

extern "C" __device__ float expf(float);
extern "C" __device__ float erff(float);
extern "C" __device__ float tanhf(float);
extern "C" __device__ float sqrtf(float);
extern "C" __device__ float fmaxf(float, float);


static __device__ __forceinline__ float __shfl_xor_sync(unsigned mask, float v, int lane) {
	return __nvvm_shfl_sync_bfly_f32(mask, v, lane, 0x1f);
}
static __device__ __forceinline__ float __shfl_sync(unsigned mask, float v, int lane) {
	return __nvvm_shfl_sync_idx_f32(mask, v, lane, 0x1f);
}
static __device__ __forceinline__ unsigned atomicAdd(unsigned *p, unsigned v) {
	return (unsigned)__nvvm_atom_add_gen_i((int *)p, (int)v);
}
static __device__ __forceinline__ float atomicAdd(float *p, float v) { return __nvvm_atom_add_gen_f(p, v); }
