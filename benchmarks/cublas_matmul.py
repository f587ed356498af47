#!/usr/bin/env python3
"""cuBLAS fp32 sgemm (TF32 off) through PyTorch: the GPU peer of matmul_gpu.
Prints one JSON line per size with the median of CUDA-event timings."""
import json
import sys

import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
for n in [int(a) for a in sys.argv[1:]] or [1024, 2048, 4096, 8192]:
    a = torch.rand(n, n, device="cuda") - 0.5
    b = torch.rand(n, n, device="cuda") - 0.5
    for _ in range(3):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    times = []
    for _ in range(15):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        torch.matmul(a, b)
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    ms = times[len(times) // 2]
    print(json.dumps({"bench": "cublas", "case": f"{n}x{n}x{n}", "device": torch.cuda.get_device_name(),
                      "peer_ms": round(ms, 4), "gflops": round(2 * n ** 3 / ms / 1e6, 1)}))
