"""Where the digits come from: the copy of the UCI data that scikit-learn's wheel ships, read
from its file so that scikit-learn itself is never imported.

The file (``sklearn/datasets/data/digits.csv.gz``) holds one image per line: 64 integers 0..16
(an 8x8 image, row by row) and its digit, comma-separated.
"""

import gzip
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from rnnlab.plugin import ConfigError

PACKAGED = ("datasets", "data", "digits.csv.gz")  # the file's place inside the sklearn package
PIXELS = 64


def packaged_file() -> Path:
    """scikit-learn's digits file; a ConfigError saying how to get it when it is missing."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the digits task reads the 8x8 digits that scikit-learn ships, and scikit-learn is "
            "not installed: pip install 'rnnlab[digits]' (or scikit-learn), or set file to a "
            "digits.csv.gz of your own",
            table="task",
            key="file",
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*PACKAGED)
    if not path.is_file():
        raise ConfigError(
            f"scikit-learn is installed but has no {path.name} at {path}; reinstall it, or set "
            f"file to a digits.csv.gz of your own",
            table="task",
            key="file",
        )
    return path


def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``images [n, 64]`` (uint8, 0..16) and ``labels [n]`` (int64, 0..9) from a digits file
    (gzip-compressed when its name ends in .gz). A ConfigError names the file and the line of
    any malformed line."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", table="task", key="file") from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = [int(v) for v in line.split(",")]
        except ValueError:
            row = []
        if len(row) != PIXELS + 1 or not all(0 <= v <= 16 for v in row[:PIXELS]):
            raise ConfigError(
                f"{path}, line {number}: expected 64 pixels 0..16 and a digit 0..9, "
                f"comma-separated",
                table="task",
                key="file",
            )
        if not 0 <= row[PIXELS] <= 9:
            raise ConfigError(
                f"{path}, line {number}: the digit is {row[PIXELS]}, not 0..9",
                table="task",
                key="file",
            )
        rows.append(row)
    if not rows:
        raise ConfigError(f"{path} holds no images", table="task", key="file")
    data = np.array(rows, np.int64)
    return data[:, :PIXELS].astype(np.uint8), data[:, PIXELS]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
