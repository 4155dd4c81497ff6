"""Finding runs: the run directories under ``outputs/`` by age, and the checkpoint a path
names (a file, a run directory, an export folder, or none: the newest run). Training's resume
and every loader use it; the checkpoint format itself is qa_seq2seq.decoding.checkpoint's."""

from __future__ import annotations

from pathlib import Path

from qa_seq2seq.errors import CheckpointError

DEFAULT_OUTPUTS = Path("outputs")


def runs_by_age(root: Path, checkpoints: str = "**/checkpoints/*.ckpt") -> list[Path]:
    """The run directories under ``root`` holding a checkpoint matching ``checkpoints`` (a glob),
    oldest first by that checkpoint's write time."""
    found = sorted(root.glob(checkpoints), key=lambda p: p.stat().st_mtime)
    return [p.parent.parent for p in found]


def newest_run(outputs: Path = DEFAULT_OUTPUTS) -> Path:
    """The run directory under ``outputs`` whose checkpoint was written last."""
    if not (runs := runs_by_age(outputs)):
        raise CheckpointError(f"no checkpoints under {outputs}/: train first (`make train`), or "
                              "pass a checkpoint file or run directory")
    return runs[-1]


def resolve_checkpoint(path: str | Path | None) -> Path:
    """A checkpoint file, a run directory (its best, else last checkpoint), an export folder
    (its model.ckpt, see qa_seq2seq.export), or None (the newest run)."""
    path = newest_run() if path is None else Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in ("checkpoints/best.ckpt", "checkpoints/last.ckpt", "best.ckpt",
                          "last.ckpt", "model.ckpt"):
            if (path / candidate).is_file():
                return path / candidate
        if (path / "step.onnx").is_file():
            raise CheckpointError(f"{path} is an ONNX export: only the decoding CLI reads it "
                                  f"(qa-seq2seq-decode --model {path}); other commands need the run "
                                  "or a weights export (python -m qa_seq2seq.export --format weights)")
        raise CheckpointError(f"{path} is a directory without checkpoints/best.ckpt, "
                              "checkpoints/last.ckpt or model.ckpt: is it a qa_seq2seq run "
                              "directory or export folder?")
    raise CheckpointError(f"{path}: no such checkpoint file or run directory")
