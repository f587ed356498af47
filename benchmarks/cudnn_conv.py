#!/usr/bin/env python3
"""cuDNN fp32 convolutions (TF32 off, benchmark mode) through PyTorch: the GPU
peer of kiln's conv2d modules. Arguments: N,C,H,W,K,R,S,stride,pad[,groups] per
layer (ResNet-18's 3x3 layers when none; groups = C: depthwise). Prints one JSON
line per layer with the median of CUDA-event timings."""
import json
import sys

import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
layers = sys.argv[1:] or ["1,64,56,56,64,3,3,1,1", "1,128,28,28,128,3,3,1,1", "1,256,14,14,256,3,3,1,1",
                          "1,512,7,7,512,3,3,1,1"]
for spec in layers:
    v = [int(f) for f in spec.split(",")]
    n, c, h, w, k, r, s, st, pad = v[:9]
    g = v[9] if len(v) > 9 else 1
    x = torch.rand(n, c, h, w, device="cuda") - 0.5
    wt = torch.rand(k, c // g, r, s, device="cuda") - 0.5
    for _ in range(10):
        y = torch.nn.functional.conv2d(x, wt, stride=st, padding=pad, groups=g)
    torch.cuda.synchronize()
    times = []
    for _ in range(50):
        b, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        b.record()
        torch.nn.functional.conv2d(x, wt, stride=st, padding=pad, groups=g)
        e.record()
        torch.cuda.synchronize()
        times.append(b.elapsed_time(e))
    times.sort()
    ms = times[len(times) // 2]
    oh, ow = y.shape[2], y.shape[3]
    flops = 2 * n * k * oh * ow * (c // g) * r * s
    print(json.dumps({"bench": "cudnn", "case": spec, "device": torch.cuda.get_device_name(), "peer_ms": round(ms, 4),
                      "gflops": round(flops / ms / 1e6, 1)}))
