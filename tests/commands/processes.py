"""Commands run as their own processes, for the tests that signal or kill them mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lugpi_store import Store


def prompts_csv(path: Path, n: int) -> Path:
    """``n`` samples with distinct prompts (every fifth in test), so every one draws an image."""
    path.write_text("text,label,prompt,split\n" + "".join(
        f"text {i},{i % 2},prompt number {i},{'train' if i % 5 else 'test'}\n" for i in range(n)))
    return path


def start_lugpi(workspace: Path, *args, env_extra=None) -> subprocess.Popen:
    """``lugpi ARGS`` on ``workspace``, its output piped. A shell without job control starts background commands
    with SIGINT ignored, and Python then installs no KeyboardInterrupt handler: the command gets Ctrl-C's
    default, as in a terminal, whoever runs the suite."""
    env = {**os.environ, "LUGPI_WORKSPACE": str(workspace), **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "lugpi_cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_images(store: Store, proc: subprocess.Popen, count: int, timeout: float = 120) -> None:
    """Until ``store`` holds ``count`` images, ``proc`` has ended, or ``timeout`` seconds have passed."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if store.exists and store.count("images") >= count:
            return
        time.sleep(0.05)
