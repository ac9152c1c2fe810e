"""Sliding-window inference speed: ours beside MONAI's `sliding_window_inference`.

One volume (128^3, `--quick` 96^3) predicted by a 3D U-Net in 64^3 windows with 50%
overlap, Gaussian blending (sigma = 0.125 x patch) and 2 windows per batch, on both sides:

- ours: `domains.healthcare.sliding_window.sliding_window_inference` (numpy windows and
  blending) around the zoo's `unet3d` (depth 3, width 16: the hippocampus config's model)
  called with `predict_on_batch`, as `deepfield healthcare evaluate/predict` do;
- MONAI: `monai.inferers.sliding_window_inference` (torch) around a torch 3D U-Net written
  here with the same layout (two 3x3x3 conv + BatchNorm + ReLU per level, max-pooling,
  2x2x2 transposed-conv upsampling, skip concatenation, 1x1x1 softmax head), so both
  networks have the same parameter count (checked, and in the record) and FLOPs.

Each side is timed whole (windows, network, blending) and network-only (the same windows
run through the network with no blending), so the record separates the framework's
network speed from the sliding-window machinery's overhead. `ratio` is our voxels/s over
MONAI's; the benchmark informs (target None). Agreement of the blending itself is checked
too: with a per-voxel predictor both must return the predictor's output exactly, and with
a predictor that depends on the position inside the window, the two blends' largest
difference is recorded.

Needs torch and MONAI, which the project does not install: `pip install -e
'.[health-bench]'` (torch's CPU wheel is enough). Run: `python -m
benchmarks.healthcare_sliding_window [--quick]`.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.healthcare_metrics_monai import MISSING, monai_installed

PATCH = (64, 64, 64)
OVERLAP, SIGMA, BATCH = 0.5, 0.125, 2
DEPTH, WIDTH, CLASSES = 3, 16, 3
REPEATS = 3


def torch_unet3d(depth: int, width: int, classes: int):
    """The zoo's `unet3d` layout in torch (see `shared/zoo/unet.py` and the U-Net blocks)."""
    import torch
    from torch import nn

    def double_conv(cin: int, cout: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(2):
            layers += [
                nn.Conv3d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01),
                nn.ReLU(inplace=True),
            ]
        return nn.Sequential(*layers)

    class UNet3D(nn.Module):
        def __init__(self):
            super().__init__()
            chans = [width * 2**i for i in range(depth + 1)]
            self.encoders = nn.ModuleList(
                double_conv(1 if i == 0 else chans[i - 1], chans[i]) for i in range(depth)
            )
            self.pool = nn.MaxPool3d(2)
            self.bottom = double_conv(chans[depth - 1], chans[depth])
            self.ups = nn.ModuleList(
                nn.ConvTranspose3d(chans[i + 1], chans[i], 2, stride=2)
                for i in reversed(range(depth))
            )
            self.decoders = nn.ModuleList(
                double_conv(2 * chans[i], chans[i]) for i in reversed(range(depth))
            )
            self.head = nn.Conv3d(chans[0], classes, 1)

        def forward(self, x):
            x = x / 255.0  # the zoo model's Rescaling(1/255) preprocess layer
            skips = []
            for encoder in self.encoders:
                x = encoder(x)
                skips.append(x)
                x = self.pool(x)
            x = self.bottom(x)
            for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
                x = decoder(torch.cat([up(x), skip], dim=1))
            return torch.softmax(self.head(x), dim=1)

    return UNet3D().eval()


def _best(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of `repeats` calls after one warm-up call, and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def blend_agreement(size: int) -> dict[str, float]:
    """Our Gaussian blend against MONAI's on predictors with known answers."""
    import torch
    from monai.inferers import sliding_window_inference as monai_swi

    from domains.healthcare.sliding_window import sliding_window_inference

    rng = np.random.default_rng(0)
    volume = rng.uniform(0, 255, (size, size, size)).astype(np.float32)
    patch = tuple(p // 2 for p in PATCH)
    ramp = np.linspace(0.0, 1.0, patch[0], dtype=np.float32)[:, None, None]

    def per_voxel(batch: np.ndarray) -> np.ndarray:
        return np.tanh(batch / 100.0)

    def positional(batch: np.ndarray) -> np.ndarray:
        return np.broadcast_to(ramp[..., None], batch.shape).copy()

    def monai_side(fn) -> np.ndarray:
        def predictor(x):  # (B, 1, D, H, W) torch -> same, through the numpy function
            y = fn(x.permute(0, 2, 3, 4, 1).numpy())
            return torch.from_numpy(np.ascontiguousarray(y)).permute(0, 4, 1, 2, 3)

        with torch.no_grad():
            out = monai_swi(
                torch.from_numpy(volume)[None, None],
                patch,
                BATCH,
                predictor,
                overlap=OVERLAP,
                mode="gaussian",
                sigma_scale=SIGMA,
            )
        return out[0].permute(1, 2, 3, 0).numpy()

    results = {}
    for name, fn in (("per_voxel", per_voxel), ("positional", positional)):
        ours = sliding_window_inference(
            volume[..., None], patch, fn, overlap=OVERLAP, sigma_scale=SIGMA, batch_size=BATCH
        )
        results[f"{name}_max_abs_diff"] = float(np.abs(ours - monai_side(fn)).max())
    truth = per_voxel(volume[..., None])
    ours = sliding_window_inference(
        volume[..., None], patch, per_voxel, overlap=OVERLAP, sigma_scale=SIGMA, batch_size=BATCH
    )
    results["per_voxel_ours_vs_truth"] = float(np.abs(ours - truth).max())
    return results


def compare(size: int, repeats: int) -> dict:
    import torch
    from monai.inferers import sliding_window_inference as monai_swi

    from domains.healthcare.sliding_window import sliding_window_inference, window_slices
    from shared.zoo import build_model

    rng = np.random.default_rng(0)
    volume = rng.uniform(0, 255, (size, size, size)).astype(np.float32)
    voxels = volume.size
    windows = window_slices(volume.shape, PATCH, OVERLAP)

    model = build_model(
        "unet3d", input_shape=(*PATCH, 1), num_classes=CLASSES, depth=DEPTH, width=WIDTH
    )
    net = torch_unet3d(DEPTH, WIDTH, CLASSES)
    keras_params = int(model.count_params())
    torch_params = int(sum(p.numel() for p in net.parameters()))
    torch_params += sum(int(b.numel()) for n, b in net.named_buffers() if "running" in n)

    def ours_predict(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(batch))

    def ours_whole():
        return sliding_window_inference(
            volume[..., None],
            PATCH,
            ours_predict,
            overlap=OVERLAP,
            sigma_scale=SIGMA,
            batch_size=BATCH,
        )

    def ours_network():
        for first in range(0, len(windows), BATCH):
            chunk = windows[first : first + BATCH]
            ours_predict(np.stack([volume[w][..., None] for w in chunk]))

    tensor = torch.from_numpy(volume)[None, None]

    def monai_whole():
        with torch.no_grad():
            return monai_swi(
                tensor, PATCH, BATCH, net, overlap=OVERLAP, mode="gaussian", sigma_scale=SIGMA
            )

    def monai_network():
        with torch.no_grad():
            for first in range(0, len(windows), BATCH):
                chunk = windows[first : first + BATCH]
                net(torch.stack([tensor[0][(slice(None), *w)] for w in chunk]))

    ours_s, ours_out = _best(ours_whole, repeats)
    ours_net_s, _ = _best(ours_network, repeats)
    monai_s, monai_out = _best(monai_whole, repeats)
    monai_net_s, _ = _best(monai_network, repeats)
    ours_rate, monai_rate = voxels / ours_s, voxels / monai_s
    return {
        "volume": [size] * 3,
        "patch": list(PATCH),
        "overlap": OVERLAP,
        "sigma_scale": SIGMA,
        "batch": BATCH,
        "windows": len(windows),
        "model": f"unet3d depth {DEPTH} width {WIDTH}, {CLASSES} classes",
        "keras_params": keras_params,
        "torch_params": torch_params,
        "torch_threads": torch.get_num_threads(),
        "ours_seconds": ours_s,
        "ours_network_seconds": ours_net_s,
        "ours_overhead_share": max(0.0, ours_s - ours_net_s) / ours_s,
        "monai_seconds": monai_s,
        "monai_network_seconds": monai_net_s,
        "monai_overhead_share": max(0.0, monai_s - monai_net_s) / monai_s,
        "ours_voxels_per_s": ours_rate,
        "monai_voxels_per_s": monai_rate,
        "outputs_sum_to_one": bool(
            np.allclose(np.asarray(ours_out).sum(-1), 1.0, atol=1e-4)
            and np.allclose(monai_out.sum(1).numpy(), 1.0, atol=1e-4)
        ),
        "ratio": ours_rate / monai_rate,
    }


def run(quick: bool = False) -> list[dict]:
    """One record: voxels/s of ours and MONAI's on the same volume, patch and model size."""
    from benchmarks.common import record

    if not monai_installed():
        return [record("healthcare_sliding_window", ratio=None, target=None, skipped=MISSING)]
    import monai as monai_module
    import torch

    result = compare(96 if quick else 128, 1 if quick else REPEATS)
    result.update(blend_agreement(48 if quick else 64))
    ratio = result.pop("ratio")
    return [
        record(
            "healthcare_sliding_window",
            ratio=ratio,
            target=None,
            quick=quick,
            monai=monai_module.__version__,
            torch=torch.__version__,
            **result,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.healthcare_sliding_window")
    parser.add_argument("--quick", action="store_true", help="a 96^3 volume, one repeat")
    args = parser.parse_args(argv)
    if not monai_installed():
        print(MISSING, file=sys.stderr)
        return 2
    from benchmarks.common import save_records

    save_records("healthcare_sliding_window", run(quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
