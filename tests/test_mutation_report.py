"""scripts/mutation_report.py: which surviving mutants it may call equivalent."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from mutation_report import equivalent  # noqa: E402

LOAD = 'raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)'


def test_known_equivalents_are_named_and_real_changes_are_not():
    assert "CPU only" in equivalent("alive = torch.arange(batch, device=src.device)",
                                    "alive = torch.arange(batch, device=None)")
    assert "vocabulary" in equivalent("log_probs = F.log_softmax(logits.float(), -1)",
                                      "log_probs = F.log_softmax(logits.float(), +1)")
    assert "memory-mapping" in equivalent(LOAD, LOAD.replace("mmap=True", "mmap=False"))
    # Dropping weights_only=True would load pickles on torch < 2.6: never equivalent.
    assert equivalent(LOAD, LOAD.replace("weights_only=True, ", "")) is None
    assert equivalent(LOAD, LOAD.replace("weights_only=True", "weights_only=None")) is None
    assert equivalent("if batch_size < 1:", "if batch_size <= 1:") is None
