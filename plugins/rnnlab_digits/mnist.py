"""MNIST for the digits task: downloaded once into a cache folder, checked against its MD5
checksums, read from the IDX files.

The four files (LeCun, Cortes & Burges, "The MNIST database of handwritten digits") are fetched
from the first mirror that answers and kept in ``<cache>/mnist``; a file already there with the
right checksum is never fetched again, and a download with the wrong checksum is discarded and
reported. The cache folder is the task's ``cache`` option, else ``$RNNLAB_CACHE``, else
``$XDG_CACHE_HOME/rnnlab``, else ``~/.cache/rnnlab``.
"""

import gzip
import hashlib
import os
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnlab.plugin import ConfigError

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FILES = {  # name -> MD5 of the gzip file, as the mirrors serve it
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
IMAGES, LABELS = 2051, 2049  # the IDX magic numbers: unsigned bytes, 3 and 1 dimensions
TIMEOUT = 60  # seconds per download


def cache_folder(option: str) -> Path:
    """Where MNIST is kept: ``<option or the default cache>/mnist``."""
    if option:
        root = Path(option).expanduser()
    elif os.environ.get("RNNLAB_CACHE"):
        root = Path(os.environ["RNNLAB_CACHE"])
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]) / "rnnlab"
    else:
        root = Path.home() / ".cache" / "rnnlab"
    return root / "mnist"


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def urlopen(url: str):
    return urllib.request.urlopen(url, timeout=TIMEOUT)


def ensure(
    folder: Path,
    files: dict[str, str] | None = None,
    mirrors: tuple[str, ...] | None = None,
    opener: Callable | None = None,
) -> dict[str, Path]:
    """Every file of ``files`` (default :data:`FILES`) in ``folder`` with its checksum,
    downloading those missing (or wrong) from ``mirrors`` (default :data:`MIRRORS`) with
    ``opener`` (default :func:`urlopen`); returns their paths. A ConfigError says which file
    could not be had and where to put it by hand."""
    files = FILES if files is None else files
    mirrors = MIRRORS if mirrors is None else mirrors
    opener = urlopen if opener is None else opener
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, want in files.items():
        path = folder / name
        if not (path.is_file() and md5(path) == want):
            download(name, want, path, mirrors, opener)
        paths[name] = path
    return paths


def download(name: str, want: str, path: Path, mirrors: tuple[str, ...], opener) -> None:
    part = path.with_name(path.name + ".part")
    problems = []
    for mirror in mirrors:
        try:
            with opener(mirror + name) as response, open(part, "wb") as f:
                shutil.copyfileobj(response, f)
        except OSError as exc:  # URLError and timeouts are OSErrors
            problems.append(f"{mirror}: {exc}")
            continue
        got = md5(part)
        if got == want:
            part.replace(path)
            return
        problems.append(f"{mirror}: MD5 {got}, expected {want}")
    part.unlink(missing_ok=True)
    raise ConfigError(
        f"cannot get MNIST's {name} ({'; '.join(problems)}); download it yourself into "
        f"{path.parent} (MD5 {want}) or set cache to a folder that holds it",
        table="task",
        key="cache",
    )


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file of unsigned bytes (gzip): ``[n, rows, cols]`` images or ``[n]`` labels."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = magic & 0xFF
    header = np.frombuffer(data, ">u4", count=1 + dims)
    if header[0] != magic:
        raise ConfigError(
            f"{path} is not an IDX file of {'images' if magic == IMAGES else 'labels'} (magic "
            f"{int(header[0])}, expected {magic})",
            table="task",
            key="cache",
        )
    shape = tuple(int(d) for d in header[1:])
    body = np.frombuffer(data, np.uint8, offset=4 * (1 + dims))
    if body.size != int(np.prod(shape)):
        raise ConfigError(f"{path} is truncated", table="task", key="cache")
    return body.reshape(shape)


def load(paths: dict[str, Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (images [n, 784], labels [n]), "test": ...}`` from the four files."""
    out = {}
    for part, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"], IMAGES)
        labels = read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"], LABELS).astype(np.int64)
        if len(images) != len(labels):
            raise ConfigError(
                f"MNIST's {part} files hold {len(images)} images and {len(labels)} labels",
                table="task",
                key="cache",
            )
        out[part] = (images.reshape(len(images), -1), labels)
    return out
