"""The ``rwrl video`` command group; mount it with ``register(app)``.

Examples::

    rwrl video corpus                                  # 16 procedural + 6 rendered clips, QCIF
    rwrl video corpus --out /data/corpus --frames 300 --procedural 32 --rendered 12
    rwrl video corpus --rendered 0                      # procedural only (no MuJoCo rendering)
    rwrl video clips --split test                      # the held-out clips

The corpus folder defaults to ``$RWRL_VIDEO_CORPUS`` or ``~/.cache/rwrl/video-corpus``
(``rwrl.video.corpus``). Running ``corpus`` again resumes an interrupted build
and keeps the clips already there. Each command imports its layer only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rwrl.cli.run import _describe_os_error, _fail

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Video: the rate-control family's clip corpus (y4m files).")

_ROOT_HELP = "corpus folder (default: $RWRL_VIDEO_CORPUS or ~/.cache/rwrl/video-corpus)"


@app.command("corpus")
def corpus(out: Optional[Path] = typer.Option(None, help=_ROOT_HELP),
           seed: int = typer.Option(0, min=0, help="seed of the clips and of the train/test split"),
           frames: int = typer.Option(60, min=1, help="frames per clip"),
           width: int = typer.Option(176, min=2, help="frame width, even (176: QCIF)"),
           height: int = typer.Option(144, min=2, help="frame height, even (144: QCIF)"),
           fps: int = typer.Option(30, min=1, help="frames per second"),
           procedural: int = typer.Option(16, min=0, help="procedural clips"),
           rendered: int = typer.Option(6, min=0, help="clips rendered from the suite's tasks "
                                        "(about 4 s each at the default size)")) -> None:
    """Build the video corpus: procedural and rendered clips as y4m, a manifest, a train/test split."""
    from rwrl.video.corpus import build_corpus, default_root
    root = default_root() if out is None else out
    source = None
    if rendered:
        from functools import partial

        from rwrl.datasets.video_clips import rendered_clips
        source = partial(rendered_clips, count=rendered)
    try:
        manifest = build_corpus(root, seed=seed, num_procedural=procedural, rendered=source,
                                frames=frames, width=width, height=height, fps=fps,
                                progress=typer.echo)
    except ValueError as err:
        _fail(str(err))
    except OSError as err:
        _fail(_describe_os_error(err))
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted: {root} is not finished; the same command resumes it", err=True)
        raise typer.Exit(code=130)
    splits = [clip["split"] for clip in manifest["clips"]]
    typer.echo(f"corpus: {root} ({len(splits)} clips, {width}x{height}, {frames} frames at "
               f"{fps} fps): {splits.count('train')} train, {splits.count('test')} test")
    typer.echo(f"manifest: {root / 'manifest.json'}")


@app.command("clips")
def clips(root: Optional[Path] = typer.Option(None, help=_ROOT_HELP),
          split: Optional[str] = typer.Option(None, help="only this split: train or test")) -> None:
    """List the corpus's clips: name, split, source and kind."""
    from rwrl.video.corpus import default_root, load_corpus
    root = default_root() if root is None else root
    try:
        if split not in (None, "train", "test"):
            raise ValueError(f"--split {split!r} is not allowed: use train or test")
        manifest = load_corpus(root)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    chosen = [c for c in manifest["clips"] if split in (None, c["split"])]
    for clip in chosen:
        typer.echo(f"{clip['name']:<48} {clip['split']:<6} {clip['source']:<11} {clip['kind']}")
    typer.echo(f"{len(chosen)} clips ({manifest['width']}x{manifest['height']}, "
               f"{manifest['frames']} frames at {manifest['fps']} fps) in {root}")


def register(root: typer.Typer) -> None:
    """Mount the group as ``rwrl video``."""
    root.add_typer(app, name="video")


__all__ = ["app", "register"]
