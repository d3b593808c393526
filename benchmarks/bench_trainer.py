"""Trainer throughput: clips per second of the training step alone (inputs already on the device)
and with the real data path (store -> DataLoader workers -> device inputs and targets -> step), and
of the data path alone, with the goal of issue 15 beside it (data path at least
:data:`GOAL_DATA_TO_STEP` x the step) and, on CUDA, the step's peak GPU memory
(``torch.cuda.max_memory_allocated``). Median over steps after one warm-up step.

Default: the small CPU configuration of ``pipelines/train_demo.toml`` on a synthetic 224-px store
(``trainer.synthetic``) in a temporary directory, then the paper's model (``train_full``:
ResNet-50, 31 frames, batch 3) on a synthetic store on CUDA, or "open (no CUDA device)" without
one. A real store on a GPU:

    python -m benchmarks trainer -- --device cuda --pipeline train_full --store stores/full.zarr
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import goals
from synthgen.demo.body_model import write_smpl_model
from trainer.config import load_train_config
from trainer.data import (ClipBatchSampler, ClipDataset, arrays_for, hidden_keypoints,
                          make_inputs, make_loader, make_targets, open_stores, split_stores,
                          to_device)
from trainer.smpl import SMPLJoints
from trainer.synthetic import make_synthetic_store
from trainer.forward import select_device, training_loss
from trainer.model.build import build_model

#: Goal of issue 15: the data path delivers at least this many times the clips/s of the step.
GOAL_DATA_TO_STEP = 2.0
#: The paper's configuration measured on CUDA by default.
GPU_PIPELINE = "train_full"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_trainer", description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default="train_demo", help="trainer config")
    parser.add_argument("--store", help="store to read (default: a synthetic one)")
    parser.add_argument("--smpl", help="SMPL directory (default: the demo body model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: the config's)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--no-gpu", action="store_true",
                        help=f"skip the {GPU_PIPELINE} measurement on CUDA")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    measure(args.pipeline, device, store=args.store, smpl=args.smpl, steps=args.steps,
            workers=args.workers)
    if device.type == "cuda" or args.no_gpu:
        return
    if not torch.cuda.is_available():
        print(f"\n{GPU_PIPELINE} on CUDA (model step vs data path, clips/s, GPU memory): "
              f"open (no CUDA device)")
        return
    print()
    measure(GPU_PIPELINE, torch.device("cuda"), store=None, smpl=args.smpl, steps=args.steps,
            workers=args.workers)


def measure(pipeline: str, device: torch.device, *, store: str | None, smpl: str | None,
            steps: int, workers: int | None) -> dict:
    """Measure and print clips/s of the step, the data path and both for one trainer config.

    Returns ``{"model", "data", "full"}`` clips/s and ``"memory"`` (peak bytes of the step on
    CUDA, else None).
    """
    config = load_train_config(pipeline)
    data = config.data
    amp = config.run.mixed_precision and device.type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        smpl_dir = smpl or str(write_smpl_model(Path(tmp) / "smpl").parent)
        smpl_joints = SMPLJoints.from_path(smpl_dir).to(device)
        if store is None:
            store = str(Path(tmp) / "bench.zarr")
            make_synthetic_store(store, SMPLJoints.from_path(smpl_dir),
                                 num_examples=(steps + 2) * data.batch_size,
                                 num_frames=data.clip_length, crop_size=224,
                                 num_persons=steps + 2, examples_per_shard=8)
        infos = open_stores([store], allow_mixed_flow=True)
        split, _ = split_stores(infos, val_every=10**9)
        sampler = ClipBatchSampler(split.num_frames, clip_length=data.clip_length,
                                   batch_size=data.batch_size, seed=0)
        workers = data.num_workers if workers is None else workers
        loader = make_loader(ClipDataset(infos, split.items, clip_length=data.clip_length,
                                         arrays=arrays_for(data.modality)),
                             sampler, num_workers=workers, pin_memory=device.type == "cuda")
        model = build_model(config).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        generator = torch.Generator(device=device).manual_seed(0)
        crop = infos[0].crop_size

        def prepare(host):
            batch = to_device(host, device)
            hidden = hidden_keypoints(batch, config=data, generator=generator)
            return (make_inputs(batch, config=data, crop_size=crop, hidden=hidden),
                    make_targets(batch, crop_size=crop))

        def step(inputs, targets):
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                outputs = model(inputs)
            loss = training_loss(outputs, targets, smpl_joints,
                                 weight_2d=config.loss.weight_2d)["loss"]
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        def timed(run_one, count):
            times = []
            for _ in range(count + 1):
                start = time.perf_counter()
                run_one()
                _sync(device)
                times.append(time.perf_counter() - start)
            return data.batch_size / statistics.median(times[1:])

        fixed = prepare(next(iter(loader)))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        model_rate = timed(lambda: step(*fixed), steps)
        memory = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        batches = iter(loader)
        data_rate = timed(lambda: prepare(next(batches)), min(steps, len(sampler) - 2))
        batches = iter(loader)
        full_rate = timed(lambda: step(*prepare(next(batches))), min(steps, len(sampler) - 2))

    pairs = data.clip_length - 1
    print(f"{config.name}: {data.modality}, {data.clip_length}-frame clips ({pairs} pairs) at "
          f"{data.input_size} px from {crop}-px crops, batch {data.batch_size}, LSTM "
          f"{config.model.lstm_hidden}, device {device}, {workers} worker(s), "
          f"{torch.get_num_threads()} torch thread(s), mixed precision {amp}")
    print(f"{'measurement':<34}{'clips/s':>10}{'pairs/s':>10}{'ratio':>8}")
    for name, rate in (("model step alone", model_rate), ("data path alone", data_rate),
                       ("step with the real data path", full_rate)):
        print(f"{name:<34}{rate:>10.2f}{rate * pairs:>10.1f}{rate / model_rate:>8.2f}")
    ratio = data_rate / model_rate
    print(f"goal: data path >= {GOAL_DATA_TO_STEP:g}x the model step: {ratio:.2f}x "
          f"({goals.verdict(ratio >= GOAL_DATA_TO_STEP)})")
    memory_text = f", {memory / 2**30:.1f} GiB" if memory is not None else ""
    if memory is not None:
        print(f"GPU memory of the step (torch.cuda.max_memory_allocated): {memory / 2**30:.2f} GiB")
    _record(config.name, device, ratio, model_rate, full_rate, memory_text)
    return {"model": model_rate, "data": data_rate, "full": full_rate, "memory": memory}


def _record(name, device, ratio, model_rate, full_rate, memory_text) -> None:
    """The goal figures: the paper's model (train_full) on a GPU only."""
    if device.type != "cuda":
        why = "open: no GPU"
    elif name != "train_full":
        why = f"open: {name}, not train_full"
    else:
        why = None
    goals.record("trainer_ratio", f"{ratio:.2f}x ({name}, {device.type})",
                 why or goals.verdict(ratio >= GOAL_DATA_TO_STEP))
    goals.record("trainer_clips", f"step {model_rate:.2f}, with data {full_rate:.2f}{memory_text}",
                 why or "met")


if __name__ == "__main__":
    main()
