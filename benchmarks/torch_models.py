#!/usr/bin/env python3
# benchmarks/torch_models.py — the peer of benchmarks/run.sh models_gpu on the GPU
# machine: PyTorch eager, batch 1, fp32 (TF32 off), cuDNN benchmark mode, CUDA
# events, median of 50 runs after 20 warm-ups; one JSON line per model.
# torchvision's ResNet-18 when it is installed, else the same network written here.
import json
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = 'cuda'


def resnet18():
    try:
        import torchvision
        return torchvision.models.resnet18(), 'torchvision'
    except Exception:
        pass
    nn = torch.nn

    class Block(nn.Module):
        def __init__(s, i, o, st):
            super().__init__()
            s.c1 = nn.Conv2d(i, o, 3, st, 1, bias=False)
            s.b1 = nn.BatchNorm2d(o)
            s.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
            s.b2 = nn.BatchNorm2d(o)
            s.d = nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o)) if st != 1 or i != o else None

        def forward(s, x):
            y = s.b2(s.c2(torch.relu(s.b1(s.c1(x)))))
            return torch.relu(y + (s.d(x) if s.d is not None else x))

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    c = 64
    for o, st in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers += [Block(c, o, st), Block(o, o, 1)]
        c = o
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)]
    return nn.Sequential(*layers), 'hand-written'


def bench(name, model, x):
    model = model.to(dev).eval()
    x = x.to(dev)
    with torch.no_grad():
        for _ in range(20):
            model(x)
        torch.cuda.synchronize()
        ts = []
        for _ in range(50):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            model(x)
            b.record()
            torch.cuda.synchronize()
            ts.append(a.elapsed_time(b))
    ts.sort()
    print(json.dumps({"bench": "model", "case": name, "peer": "pytorch-eager-cudnn-fp32", "ms": ts[len(ts) // 2],
                      "torch": torch.__version__, "gpu": torch.cuda.get_device_name()}))


m, how = resnet18()
bench('resnet18 (%s)' % how, m, torch.randn(1, 3, 224, 224))
layer = torch.nn.TransformerEncoderLayer(256, 4, 1024, activation='gelu', batch_first=True, dropout=0.0)
bench('transformer', torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), torch.randn(1, 128, 256))
try:
    import torchvision
    bench('squeezenet1_1', torchvision.models.squeezenet1_1(), torch.randn(1, 3, 224, 224))
    bench('mobilenet_v2', torchvision.models.mobilenet_v2(), torch.randn(1, 3, 224, 224))
except Exception as e:
    print(json.dumps({"case": "squeezenet1_1, mobilenet_v2", "skipped": str(e)[:80]}))
