"""The progress bar keeps count, rate and ETA visible at any width; loss parts are cut first."""

from __future__ import annotations

import io

import pytest
from rich.console import Console, Group

from lugpi_cli.progress import loss_postfix as _postfix
from lugpi_cli.progress import ProgressBar, format_eta

LOSSES = {"total": 0.725, "ce": 0.694, "kl_multi": 0.0, "w_multi": 0.492, "kl_text": 0.001, "w_text": 0.254,
          "kl_image": 0.003, "w_image": 0.254}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def render(bar: ProgressBar, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, legacy_windows=False).print(
        Group(*bar._progress.get_renderables()))
    return out.getvalue().rstrip("\n").split("\n")


def bar_after(description: str, total: int, done: int, per_step: float, postfix: str, **options) -> ProgressBar:
    bar = ProgressBar(description, console=Console(file=io.StringIO(), width=80), **options)
    clock = Clock()
    bar._progress.get_time = clock
    bar.start(total, description)
    for _ in range(done):
        clock.now += per_step
        bar.advance(1, postfix)
    return bar


@pytest.mark.parametrize("width", [80, 200])
def test_training_bar_keeps_count_rate_and_eta(width):
    bar = bar_after("epoch 12", 1_250, 400, 0.5, _postfix(LOSSES), unit="batch", rate_unit="samples",
                    rate_scale=14)
    lines = render(bar, width)
    assert all(len(line) <= width for line in lines)
    first = lines[0]
    assert "epoch 12" in first and "400/1,250" in first
    assert "28.00 samples/s" in first  # 2 batches/s x 14 samples
    assert "ETA 0:07:05" in first  # 850 batches left at 2 per second
    assert len(lines) == 2 and lines[1].startswith("  total 0.725 ")
    if width == 80:
        assert lines[1].endswith("…")  # the loss parts are cut, never the count
    else:
        assert "w_image 0.254" in lines[1]


@pytest.mark.parametrize("width", [80, 200])
def test_generate_bar_at_both_widths(width):
    bar = bar_after("generating", 49_578, 2_179, 0.25, "", unit="img", eta_label="GPU time left")
    (line,) = render(bar, width)
    assert len(line) <= width
    assert "2,179/49,578" in line and "4.00 img/s" in line and "GPU time left 3:17:30" in line  # 47,399 left at 4/s, rounded up


def test_a_finished_bar_says_how_long_it_took_and_drops_the_details():
    bar = bar_after("embedding", 10, 10, 1.0, "detail")
    (line,) = render(bar, 80)
    assert "10/10" in line and "1.00 it/s" in line and "done in 0:00:10" in line and "detail" not in line


def test_unknown_eta_and_interrupt_note():
    assert format_eta(None) == "-:--:--" and format_eta(3725.9) == "1:02:05"
    bar = bar_after("generating", 4_975, 3, 1.0, "", unit="img", kept="images stored")
    note = bar.interrupt_note()
    assert note["message"] == "3 of 4,975 images stored; run the same command to continue"
    assert (note["kept"], note["total"], note["unit"]) == (3, 4975, "img")
