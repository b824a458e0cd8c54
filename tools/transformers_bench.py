#!/usr/bin/env python3
"""Captioning images/s of Hugging Face transformers' BLIP-2, for comparison with `worker bench`.

Builds Blip2ForConditionalGeneration at the blip2-opt-2.7b shape with random weights (no
download), in fp16 on the first CUDA device, and times pixels -> ids for 20 new tokens (no early
EOS: min_new_tokens = max_new_tokens) at each batch size, best of --repeats runs after one warm-up.
"max" doubles the batch from the largest given until CUDA runs out of memory and reports the
largest that fitted. Prints one JSON line per batch size.

Usage: python3 tools/transformers_bench.py [--batches 1,8,32,128,max] [--new-tokens 20]
                                           [--repeats 2] [--dtype fp16|bf16|fp32]
"""
import argparse
import json
import sys
import time

import torch
import transformers
from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2QFormerConfig, Blip2VisionConfig, OPTConfig

IMAGE_TOKEN = 50265  # image_token_index of the released checkpoint (as blipflow's shape)


def config():
    vision = Blip2VisionConfig(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16,
                               image_size=224, patch_size=14, layer_norm_eps=1e-6, qkv_bias=True)
    qformer = Blip2QFormerConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                                 encoder_hidden_size=1408, cross_attention_frequency=2)
    text = OPTConfig(vocab_size=50304, hidden_size=2560, num_hidden_layers=32, ffn_dim=10240, num_attention_heads=32,
                     max_position_embeddings=2048, word_embed_proj_dim=2560, bos_token_id=2, eos_token_id=50118,
                     pad_token_id=1)
    c = Blip2Config(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(), text_config=text.to_dict(),
                    num_query_tokens=32)
    c.image_token_index = IMAGE_TOKEN
    c.image_token_id = IMAGE_TOKEN
    return c


def caption(model, n, new_tokens, dtype):
    pixels = torch.randn(n, 3, 224, 224, device="cuda", dtype=dtype)
    ids = torch.tensor([[IMAGE_TOKEN] * 32 + [2]] * n, device="cuda")
    mask = torch.ones_like(ids)
    torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(pixel_values=pixels, input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, num_beams=1)
    torch.cuda.synchronize()
    secs = time.perf_counter() - start
    generated = out.shape[1] - (ids.shape[1] if out.shape[1] > new_tokens else 0)
    if generated != new_tokens:
        raise RuntimeError(f"generated {generated} tokens, want {new_tokens}")
    return secs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batches", default="1,8,32,128,max")
    p.add_argument("--new-tokens", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    a = p.parse_args()
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype]
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.device("cuda"):
        model = Blip2ForConditionalGeneration(config()).to(dtype).eval()
    built = time.perf_counter() - start
    meta = dict(kind="setup", transformers=transformers.__version__, torch=torch.__version__,
                gpu=torch.cuda.get_device_name(0), dtype=a.dtype, built_s=round(built, 1))
    print(json.dumps(meta), flush=True)

    sizes = [int(s) for s in a.batches.split(",") if s.strip() not in ("", "max")]
    find_max = "max" in a.batches.split(",")

    def timed(n):
        caption(model, n, a.new_tokens, dtype)  # warm-up
        best = min(caption(model, n, a.new_tokens, dtype) for _ in range(max(a.repeats, 1)))
        print(json.dumps(dict(kind="caption", batch=n, new_tokens=a.new_tokens, seconds=round(best, 4),
                              images_per_s=round(n / best, 2))), flush=True)

    for n in sizes:
        timed(n)
    if find_max:
        largest, n = 0, max(sizes + [1]) * 2
        while n <= 16384:
            try:
                caption(model, n, a.new_tokens, dtype)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                break
            largest, n = n, n * 2
        if largest:
            print(json.dumps(dict(kind="largest_batch", batch=largest)), flush=True)
            timed(largest)


if __name__ == "__main__":
    sys.exit(main())
