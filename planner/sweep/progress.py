"""A progress bar with an ETA on stderr (one line redrawn on a terminal; a line per 10% otherwise)."""

import sys
import time
from typing import TextIO

WIDTH = 30


def _clock(seconds: float) -> str:
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBar:
    """Counts finished scenarios; the ETA assumes the remaining ones take the mean time of those done so far."""

    def __init__(self, total: int, *, skipped: int = 0, stream: TextIO | None = None, enabled: bool = True):
        self.total, self.skipped = total, skipped
        self.done = self.errors = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._last_decile = -1

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        count = self.done + self.skipped
        fraction = count / self.total if self.total else 1.0
        filled = int(WIDTH * fraction)
        eta = elapsed / self.done * (self.total - count) if self.done else float("nan")
        eta_text = _clock(eta) if eta == eta else "?"
        errors = f", {self.errors} failed" if self.errors else ""
        return (f"sweep [{'#' * filled}{'.' * (WIDTH - filled)}] {count}/{self.total} {fraction:4.0%} "
                f"elapsed {_clock(elapsed)} ETA {eta_text}{errors}")

    def update(self, ok: bool) -> None:
        self.done += 1
        self.errors += 0 if ok else 1
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + self.line())
            self.stream.flush()
            return
        decile = int(10 * (self.done + self.skipped) / max(self.total, 1))
        if decile != self._last_decile:
            self._last_decile = decile
            self.stream.write(self.line() + "\n")

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
