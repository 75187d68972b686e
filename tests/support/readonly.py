"""A folder that can be turned read-only for real: a small tmpfs remounted read-only when the
tests run as root (permission bits do not stop root), its mode bits otherwise."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> bool:
    try:
        done = subprocess.run(["mount", *args], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@contextmanager
def freezable_folder(folder: Path):
    """Yield ``(folder, freeze)``: ``freeze()`` makes ``folder`` read-only (a read-only mount
    as root; skips the test when root cannot mount)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:

        def freeze() -> None:
            for p in [folder, *folder.rglob("*")]:
                if p.is_dir():
                    p.chmod(0o555)

        try:
            yield folder, freeze
        finally:
            for p in [folder, *folder.rglob("*")]:
                if p.is_dir():
                    p.chmod(0o755)
        return
    if not _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)):
        pytest.skip("running as root without the right to mount a tmpfs")

    def freeze() -> None:
        if not _mount("-o", "remount,ro", str(folder)):
            pytest.skip("cannot remount the tmpfs read-only")

    try:
        yield folder, freeze
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=10)
