"""The ``trainer`` command line: ``trainer train``, ``trainer eval``, ``trainer predict``."""

from __future__ import annotations

from pathlib import Path

import click

from synthgen.core.cli import OneLineGroup, set_option, user_errors


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Train and evaluate Motion HMR on synthgen stores (Doersch & Zisserman, NeurIPS 2019)."""


@main.command()
@click.option("--store", "stores", multiple=True,
              help="A synthgen store (path or URL); repeat to train on several. Required unless "
                   "--resume (then the run's recorded stores; if given, they must be those).")
@click.option("--pipeline", default="train_full", show_default=True,
              help="Trainer config: a name (train_*, synthgen/pipelines/) or a TOML path.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Run directory (checkpoint, logs). Default: runs/<pipeline name>.")
@click.option("--resume", is_flag=True,
              help="Continue from <out>/last.pt (its saved config and stores are used). Under "
                   "torchrun, every process resumes.")
@click.option("--overwrite", is_flag=True,
              help="Start again in an --out that holds a run (its last.pt is replaced).")
@click.option("--allow-mixed-flow", is_flag=True,
              help="Accept stores made with different crop-flow backends.")
@click.option("--smpl", help="SMPL model directory (overrides model.smpl).")
@click.option("--imagenet-weights", help="torchvision resnet50 .pth (overrides the config).")
@click.option("--real-store", "real_stores", multiple=True,
              help="Store of real clips for the DANN adversary (overrides dann.real_stores).")
@click.option("--device", help="cpu, cuda, cuda:1... (overrides run.device).")
@click.option("--steps", type=int, help="Optimiser steps (overrides optim.steps).")
@click.option("--seed", type=click.IntRange(min=0), help="Run seed (overrides run.seed).")
@set_option
def train(stores, pipeline, out_dir, resume, overwrite, allow_mixed_flow, smpl, imagenet_weights,
          real_stores, device, steps, seed, sets):
    """Train Motion HMR; print validation PA-MPJPE against two baselines at the end.

    Several processes: `torchrun --nproc_per_node N $(which trainer) train ...` (one per GPU;
    data.batch_size is the global batch, split over the processes).
    """
    from trainer.checkpoint import CHECKPOINT
    from trainer.config import load_train_config
    from trainer.train import train as run_training

    if resume and overwrite:
        raise click.UsageError("give --resume or --overwrite, not both")
    if not stores and not resume:
        raise click.UsageError("missing option '--store' (it may be left out only with --resume)")
    overrides = {"data": {}, "model": {}, "optim": {}, "run": {}, "dann": {}}
    if allow_mixed_flow:
        overrides["data"]["allow_mixed_flow"] = True
    if smpl:
        overrides["model"]["smpl"] = smpl
    if imagenet_weights:
        overrides["model"]["imagenet_weights"] = imagenet_weights
    if real_stores:
        overrides["dann"]["real_stores"] = list(real_stores)
    if device:
        overrides["run"]["device"] = device
    if seed is not None:
        overrides["run"]["seed"] = seed
    if steps is not None:
        overrides["optim"]["steps"] = steps
    try:
        config = load_train_config(pipeline, overrides=overrides, sets=sets)
    except ValueError as exc:  # ConfigError: one line naming the field
        raise click.ClickException(str(exc)) from exc
    out_dir = out_dir or f"runs/{config.name}"
    if not (resume or overwrite) and (Path(out_dir) / CHECKPOINT).exists():
        raise click.ClickException(
            f"{out_dir} holds a training run ({CHECKPOINT}): pass --resume to continue it, "
            f"--overwrite to start again (replacing it), or choose another --out")
    try:
        run_training(config, list(stores), out_dir=out_dir, resume=resume,
                     log=lambda line: click.echo(line, err=True))
    except user_errors() as exc:
        raise click.ClickException(str(exc)) from exc


@main.command("eval")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A training run's last.pt.")
@click.option("--store", required=True,
              help="Store to evaluate on: a 3DPW store (synthgen build-3dpw) or a synthetic one.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write summary.json, per_sequence.csv, per_person.csv, frames.csv, plots/.")
@click.option("--training-store",
              help="The checkpoint's training store, if it moved (its crop flow is compared).")
@click.option("--smpl", help="SMPL model directory or file (default: the checkpoint's).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda...")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Clips per forward pass (default: the training batch size).")
@click.option("--h36m-regressor", type=click.Path(exists=True, dir_okay=False),
              help="J_regressor_h36m.npy (17 x 6890, as SPIN ships it): also report the h36m "
                   "protocol of most published 3DPW tables (frame-averaged).")
def eval_command(checkpoint, store, out_dir, training_store, smpl, device, batch_size,
                 h36m_regressor):
    """PA-MPJPE (mm) of a checkpoint by the paper's protocol: 14 joints, frames with at least 7
    visible keypoints, averaged per person then over people (also frame-weighted), per sequence;
    with --h36m-regressor also by the H36M-regressor protocol. Every output names its protocol.

    Refuses a store made with another crop-flow backend or crop size than the training data.
    """
    from trainer.evaluate import evaluate

    try:
        result = evaluate(checkpoint, store, out_dir=out_dir, training_store=training_store,
                          smpl=smpl, device=device, batch_size=batch_size,
                          h36m_regressor=h36m_regressor,
                          log=lambda line: click.echo(line, err=True))
    except user_errors() as exc:
        raise click.ClickException(str(exc)) from exc
    for line in result.lines():
        click.echo(line)


@main.command("predict")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A training run's last.pt.")
@click.option("--store", "store_url", required=True,
              help="A video store: `synthgen build-video VIDEO --keypoints FILE --match-store "
                   "TRAIN --out V.zarr`.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: predictions.npz, predictions.json, skeleton.mp4.")
@click.option("--training-store",
              help="The checkpoint's training store, if it moved (its crop flow and crops).")
@click.option("--video", type=click.Path(exists=True),
              help="The store's video, if it moved (drawn on in skeleton.mp4).")
@click.option("--smpl", help="SMPL model directory or file (default: the checkpoint's).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda...")
def predict_command(checkpoint, store_url, out_dir, training_store, video, smpl, device):
    """3D pose of the person in a video store: per-frame SMPL parameters and joints, and the
    video with the projected skeleton. The store must be made as the network's training data."""
    from trainer.predict import predict

    try:
        predict(store_url, checkpoint, out_dir, training_store=training_store, video=video,
                smpl=smpl, device=device, log=lambda line: click.echo(line, err=True))
    except user_errors() as exc:
        raise click.ClickException(str(exc)) from exc
