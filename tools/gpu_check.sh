#!/usr/bin/env bash
# gpu_check.sh runs, in one go on a machine with an NVIDIA GPU, everything of
# the CUDA backend that cannot be checked without one, and writes the results
# to $OUT (default ./gpu-check-out):
#   1. static binaries (CGO_ENABLED=0): worker, coordinator, and the test
#      binaries of model/cuda, model/cuda/ops and model/blip2;
#   2. the CUDA tests with BLIPFLOW_REQUIRE_CUDA=1 (driver, kernels compiled by
#      NVRTC, op parity with the CPU in fp32 (TF32 off) and bf16, graph
#      replay, sampling kernels, and the fixtures: fp32 ids exactly, bf16
#      within bounds);
#   3. `worker bench --device cuda --shape blip2-opt-2.7b` captioning with 20
#      new tokens at batch 1, 8, 32, 128 and the largest that fits;
#   4. tools/transformers_bench.py at the same shape, fp16, same batches;
#   5. a `coordinator run --local --device cuda` pipeline run over generated
#      images with the tiny OPT fixture, images/s end to end.
# Each step has a time limit and the script carries on after a failure; the
# summary (summary.txt) lists each step's exit status.
#
# Without Go on the GPU machine, build first elsewhere with
#   tools/gpu_check.sh --build-only DIR
# and run with BIN=DIR tools/gpu_check.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

build() { # build DIR
	local dir=$1
	mkdir -p "$dir"
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$dir/worker" ./cmd/worker &&
		CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$dir/coordinator" ./cmd/coordinator &&
		CGO_ENABLED=0 go test -c -ldflags='-s -w' -o "$dir/cuda.test" ./model/cuda &&
		CGO_ENABLED=0 go test -c -ldflags='-s -w' -o "$dir/cuda_ops.test" ./model/cuda/ops &&
		CGO_ENABLED=0 go test -c -ldflags='-s -w' -o "$dir/blip2.test" ./model/blip2
}

if [ "${1:-}" = "--build-only" ]; then
	build "${2:?usage: gpu_check.sh --build-only DIR}"
	exit
fi

OUT=${OUT:-${1:-$repo/gpu-check-out}}
mkdir -p "$OUT"
BIN=${BIN:-$OUT/bin}
summary=$OUT/summary.txt
: >"$summary"
export BLIPFLOW_KERNEL_CACHE=$OUT/kernel-cache

step() { # step NAME SECONDS COMMAND... : runs with a limit, logs to $OUT/NAME.txt
	local name=$1 limit=$2
	shift 2
	local start=$(date +%s)
	echo "=== $name (limit ${limit}s)"
	timeout --signal=INT --kill-after=20 "$limit" "$@" >"$OUT/$name.txt" 2>&1
	local rc=$?
	printf '%-24s rc=%-4s %4ss\n' "$name" "$rc" "$(($(date +%s) - start))" | tee -a "$summary"
	tail -n 5 "$OUT/$name.txt"
	return 0
}

{
	date -u
	nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
	ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublasLt\.so|libnvrtc\.so' || true
	python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1
} >"$OUT/machine.txt"
cat "$OUT/machine.txt"

if command -v go >/dev/null 2>&1; then
	export -f build
	step build 600 bash -c 'build "$1"' _ "$BIN"
elif [ ! -x "$BIN/worker" ]; then
	echo "no Go toolchain and no binaries in $BIN: run tools/gpu_check.sh --build-only DIR elsewhere, then BIN=DIR $0" >&2
	exit 1
fi

export BLIPFLOW_REQUIRE_CUDA=1 BLIPFLOW_TESTDATA=$repo/testdata/blip2
step test_cuda 120 "$BIN/cuda.test" -test.v -test.count=1
step test_cuda_ops 180 "$BIN/cuda_ops.test" -test.v -test.count=1
step test_blip2_cuda 240 "$BIN/blip2.test" -test.v -test.count=1 -test.run 'CUDA'

step bench_cuda_bf16 420 "$BIN/worker" bench --device cuda --dtype bf16 --shape blip2-opt-2.7b \
	--decode-batch 1,8,32,128 --caption-batch 1,8,32,128,max --new-tokens 20 --repeats 2
step transformers_fp16 420 python3 tools/transformers_bench.py --batches 1,8,32,128,max --new-tokens 20 --repeats 2 --dtype fp16

# A folder of 2000 images: the fixture images, copied round-robin.
images=$OUT/images
rm -rf "$images" && mkdir -p "$images"
i=0
while [ $i -lt 2000 ]; do
	for f in testdata/blip2/images/*; do
		[ $i -lt 2000 ] || break
		cp "$f" "$images/img$(printf %05d $i).${f##*.}"
		i=$((i + 1))
	done
done
step pipeline_cuda 300 "$BIN/coordinator" run --local --progress=false --metrics-addr "" --device cuda \
	--input "$images" --model testdata/blip2/opt-tiny/model --output "$OUT/pipeline-out" --batch-size 32 --concurrency 4

echo
echo "summary ($summary):"
cat "$summary"
