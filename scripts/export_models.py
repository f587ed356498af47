#!/usr/bin/python3
"""Exports the test and benchmark models to ONNX with Debian's python3-torch and
python3-torchvision: random weights from a fixed seed, nothing downloaded.

    /usr/bin/python3 scripts/export_models.py OUTDIR [NAME...]

NAME: resnet18 mobilenet_v2 squeezenet1_1 transformer (default: those four), or
mlp (a tiny 64-128-10 perceptron for the export tests), or mlp64 (96-128-80 on a
batch of 64, for tuning the GPU template). Each model is written as
OUTDIR/NAME.onnx with batch 1 (mlp64: 64), input "input", output "output",
opset 14 (LayerNorm arrives decomposed, GELU as Erf).
"""
import os
import sys

import torch
import torchvision


class Encoder(torch.nn.Module):
    """A 2-layer torch.nn.TransformerEncoder: d_model 256, 4 heads, GELU, sequence 128."""

    def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(d_model=256, nhead=4, dim_feedforward=1024,
                                                 activation="gelu", batch_first=True, dropout=0.0)
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)

    def forward(self, x):
        return self.encoder(x)


def build(name):
    torch.manual_seed(0)
    if name == "mlp":
        return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, 10),
                                   torch.nn.Softmax(dim=1)), torch.randn(1, 64)
    if name == "mlp64":  # a batch of 64: matrix products large enough for the GPU template's tiles
        return torch.nn.Sequential(torch.nn.Linear(96, 128), torch.nn.ReLU(), torch.nn.Linear(128, 80)), \
            torch.randn(64, 96)
    if name == "transformer":
        return Encoder(), torch.randn(1, 128, 256)
    model = getattr(torchvision.models, name)(weights=None)
    # random but not degenerate batch-norm statistics: folding must get them right
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return model, torch.randn(1, 3, 224, 224)


def export(name, out):
    model, x = build(name)
    model.eval()
    path = os.path.join(out, name + ".onnx")
    # the transformer's eval fast path (aten::_transformer_encoder_layer_fwd) has no ONNX
    # symbolic: export it with gradients enabled, which takes the plain path
    if name == "transformer":
        torch.onnx.export(model, x, path, opset_version=14, input_names=["input"], output_names=["output"])
    else:
        with torch.no_grad():
            torch.onnx.export(model, x, path, opset_version=14, input_names=["input"], output_names=["output"])
    print(path)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    names = sys.argv[2:] or ["resnet18", "mobilenet_v2", "squeezenet1_1", "transformer"]
    for n in names:
        if n not in ("resnet18", "mobilenet_v2", "squeezenet1_1", "transformer", "mlp", "mlp64"):
            sys.exit("unknown model " + n)
        export(n, out)


if __name__ == "__main__":
    main()
