"""The ``trainer`` command line: ``trainer train`` (more subcommands register here)."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Train and evaluate Motion HMR on synthgen stores (Doersch & Zisserman, NeurIPS 2019)."""


@main.command()
@click.option("--store", "stores", multiple=True, required=True,
              help="A synthgen store (path or URL); repeat to train on several.")
@click.option("--pipeline", default="train_full", show_default=True,
              help="Trainer config: a pipelines/train_*.toml name or a path.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Run directory (checkpoint, logs). Default: runs/<pipeline name>.")
@click.option("--resume", is_flag=True,
              help="Continue from <out>/last.pt (its saved config and stores are used).")
@click.option("--allow-mixed-flow", is_flag=True,
              help="Accept stores made with different crop-flow backends.")
@click.option("--smpl", help="SMPL model directory (overrides model.smpl).")
@click.option("--imagenet-weights", help="torchvision resnet50 .pth (overrides the config).")
@click.option("--real-store", "real_stores", multiple=True,
              help="Store of real clips for the DANN adversary (overrides dann.real_stores).")
@click.option("--device", help="cpu, cuda, cuda:1... (overrides run.device).")
@click.option("--steps", type=int, help="Optimiser steps (overrides optim.steps).")
@click.option("--seed", type=int, help="Run seed (overrides run.seed).")
def train(stores, pipeline, out_dir, resume, allow_mixed_flow, smpl, imagenet_weights,
          real_stores, device, steps, seed):
    """Train Motion HMR; print validation PA-MPJPE against two baselines at the end."""
    from trainer.config import load_train_config
    from trainer.train import train as run_training

    try:
        config = load_train_config(pipeline)
    except (FileNotFoundError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
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
    config = config.replace(**overrides)
    out_dir = out_dir or f"runs/{config.name}"
    try:
        run_training(config, list(stores), out_dir=out_dir, resume=resume,
                     log=lambda line: click.echo(line, err=True))
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
