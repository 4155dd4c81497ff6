"""What happens to a row that cannot be used (``data.on_bad_row``, and ``data.overlength=drop``
for over-long rows): ``error`` stops, naming the file and line (or row) and the fix; ``skip``
drops it and says so in the log. One rule for rows met all at once (in memory) or one at a time
(streaming)."""

from __future__ import annotations

import logging

from qa_seq2seq.data.fields import NAMES_THE_FIELD
from qa_seq2seq.errors import DataError

log = logging.getLogger(__name__)


class BadRows:
    """The policy for bad rows of one source (``where``: its file, or dataset and split)."""

    def __init__(self, where: str, skip: bool, what: str = "bad row"):
        self.where, self.skip, self.what, self.dropped = where, skip, what, 0

    def _fix(self, problems: list[str], them: str = "them") -> str:
        if all(problem.endswith(NAMES_THE_FIELD) for problem in problems):
            return ("name the fields your rows have (data.question_field, data.answer_field, "
                    "data.source_template)")
        return f"fix {them}, or set data.on_bad_row=skip to skip {them}"

    def all(self, problems: list[tuple[int | str, str]]) -> None:
        """Rows read at once: ``problems`` as (line number, or ``"row N"``, what is wrong)."""
        if not problems:
            return
        described = [f"{self.where}:{at}: {what}" if isinstance(at, int) else
                     f"{self.where}, {at}: {what}" for at, what in problems]
        if not self.skip:
            more = f"\n... and {len(described) - 10} more" if len(described) > 10 else ""
            raise DataError(f"bad rows ({self._fix([what for _, what in problems])}):\n"
                            + "\n".join(described[:10]) + more)
        log.warning("%s: skipped %d %ss: %s%s", self.where, len(problems), self.what,
                    "; ".join(described[:3]), " ..." if len(described) > 3 else "")

    def __call__(self, problem: str | None, index: int) -> bool:
        """A row met in a stream (an ``IterableDataset.filter`` function): keep it, drop it, or
        stop at it."""
        if problem is None:
            return True
        if not self.skip:
            raise DataError(f"{self.where}: row {index + 1} of the stream: {problem} "
                            f"({self._fix([problem], 'it')})")
        self.dropped += 1
        if self.dropped & (self.dropped - 1) == 0:  # 1, 2, 4, 8, ...: a trace, not a flood
            log.warning("%s: %d %ss skipped so far (e.g. row %d: %s)", self.where, self.dropped,
                        self.what, index + 1, problem)
        return False
