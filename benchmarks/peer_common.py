"""What the sections of ``peer_bench.py`` share: the settings, interleaved rounds, and timing the library calls
both sides of a pair make."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GEN_STEPS, GEN_PX, GEN_GUIDANCE = 20, 64, 7.5
EMBED_BATCH = 16
BATCH, LR, MAX_LENGTH = 14, 5e-5, 128


def median_pair(rounds: int, first, second) -> tuple[float, float]:
    """Run ``first(r)`` and ``second(r)`` ``rounds`` times, alternating which goes first; medians."""
    a, b = [], []
    for r in range(rounds):
        if r % 2 == 0:
            a.append(first(r))
            b.append(second(r))
        else:
            b.append(second(r))
            a.append(first(r))
    return statistics.median(a), statistics.median(b)


# -- 1. generation ---------------------------------------------------------------------

class Timed:
    """A library object (pipeline, image processor, model) with the seconds spent inside its calls: both sides
    make the same calls, so the rest of a run is each side's own overhead."""

    def __init__(self, inner, clock: list[float] | None = None):
        self.inner, self.clock = inner, clock if clock is not None else [0.0]

    @property
    def seconds(self) -> float:
        return self.clock[0]

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.clock[0] += time.perf_counter() - t

    def __getattr__(self, name):
        return getattr(self.inner, name)


def equalised(ours: list[tuple[float, float]], theirs: list[tuple[float, float]]) -> str:
    """From each round's (wall seconds, seconds inside the shared library calls): each side's median share of
    wall time outside those calls, the throughput ratio with the time inside them made equal (what the machine's
    noise in identical calls cannot move), and the seconds inside them per round (that noise itself)."""
    out, peer_out = (statistics.median((w - i) / w for w, i in side) for side in (ours, theirs))
    rounds = "  ".join(f"{a[1]:.2f}/{b[1]:.2f}" for a, b in zip(ours, theirs))
    return (f"outside the shared calls: lugpi {100 * out:.2f}%, the bare loop {100 * peer_out:.2f}%; ratio with the "
            f"time inside them equalised {(1 - out) / (1 - peer_out):.3f}\n"
            f"           seconds inside the shared calls per round (lugpi/bare; the same calls): {rounds}")
