"""The embedded demo dataset: SMPL-format body models, SURREAL-format people, Kinetics-like videos.

Layout under ``out_dir``: ``smpl/SMPL_{NEUTRAL,FEMALE,MALE}.pkl``, ``surreal/cmu/...`` (the SURREAL
tree) and ``kinetics/<class>/<video>`` (each video with its ground-truth camera track beside it).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from synthgen.demo.appearance import check_domain
from synthgen.demo.backgrounds import make_demo_backgrounds
from synthgen.demo.body_model import GENDERS, write_smpl_model
from synthgen.demo.motions import motion_set
from synthgen.demo.people import make_demo_people


@dataclass(frozen=True)
class DemoData:
    """Paths of a generated demo dataset."""

    root: Path
    smpl_dir: Path
    surreal_dir: Path
    kinetics_dir: Path
    people: list[Path]
    backgrounds: list[Path]


def _write_models(smpl_dir: Path) -> list[Path]:
    return [write_smpl_model(smpl_dir, gender=gender) for gender in GENDERS]


def make_demo_data(out_dir, *, seed: int = 0, num_people: int = 24, people_frames: int = 100,
                   num_backgrounds: int = 6, background_frames: int | None = None,
                   test_size: bool = False, workers: int = 2, domain: str = "A",
                   motions: str = "all") -> DemoData:
    """Generate the demo dataset (deterministic for ``seed``), using ``workers`` processes.

    Parameters
    ----------
    out_dir : str or Path
        Receives ``smpl/``, ``surreal/`` and ``kinetics/``.
    num_people, people_frames
        SURREAL-format clips and their length (frames at 30 fps).
    num_backgrounds, background_frames
        Background videos and their length in 30 fps frames (default: the generator's).
    test_size : bool
        Small background videos for fast tests.
    domain, motions
        The people's appearance domain (``appearance.DOMAINS``) and motion set
        (``motions.MOTION_SETS``); see ``people.make_demo_people``.
    """
    check_domain(domain)
    motion_set(motions)
    root = Path(out_dir)
    smpl_dir, surreal_dir, kinetics_dir = root / "smpl", root / "surreal", root / "kinetics"
    workers = max(1, workers)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # People dominate the time: split them over the workers, clip k to worker k % workers.
        people = [pool.submit(make_demo_people, surreal_dir, seed=seed, num_clips=num_people,
                              num_frames=people_frames, indices=range(w, num_people, workers),
                              domain=domain, motions=motions)
                  for w in range(workers)]
        backgrounds = pool.submit(make_demo_backgrounds, kinetics_dir, seed=seed,
                                  num_videos=num_backgrounds, num_frames=background_frames,
                                  test_size=test_size)
        models = pool.submit(_write_models, smpl_dir)
        models.result()
        paths = [path for part in people for path in part.result()]
        return DemoData(root, smpl_dir, surreal_dir, kinetics_dir,
                        sorted(paths, key=lambda p: p.parent.name), backgrounds.result())
