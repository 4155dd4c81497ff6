"""scripts/mutation_report.py: which surviving mutants it may call equivalent."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from mutation_report import equivalent  # noqa: E402

LOAD = 'raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)'
LIMITS = "limits = _limits(src_lengths, max_length, max_length_ratio).to(src.device)"
RANKED = 'return [[hypothesis(tokens_[i][:n], log_probs_[i][:n], done, "none", 0.0)]'


def test_known_equivalents_are_named():
    assert "CPU only" in equivalent("alive = torch.arange(batch, device=src.device)",
                                    "alive = torch.arange(batch, )")
    assert "CPU only" in equivalent(LIMITS, LIMITS.replace("(src.device)", "(None)"))
    assert "vocabulary" in equivalent("log_probs = F.log_softmax(logits.float(), -1)",
                                      "log_probs = F.log_softmax(logits.float(), +1)")
    assert "map location" in equivalent(LOAD, LOAD.replace("\"cpu\"", "None"))
    assert "ranked alone" in equivalent(RANKED, RANKED.replace('"none", 0.0', 'None, 0.0'))


def test_a_family_never_covers_a_change_outside_its_part():
    """Each family names the part a mutant may change; a change elsewhere on the same line is a
    real survivor."""
    assert equivalent(LIMITS, LIMITS.replace("max_length_ratio)", ")")) is None
    assert equivalent(RANKED, RANKED.replace("[:n]", "[:n + 1]", 1)) is None
    assert equivalent('return instantiate(dict(net_config), _convert_="all")',
                      'return instantiate(None, _convert_="all")') is None
    # Dropping weights_only=True would load pickles on torch < 2.6: never equivalent.
    assert equivalent(LOAD, LOAD.replace("weights_only=True, ", "")) is None
    assert equivalent(LOAD, LOAD.replace("weights_only=True", "weights_only=None")) is None
    assert equivalent("if batch_size < 1:", "if batch_size <= 1:") is None
