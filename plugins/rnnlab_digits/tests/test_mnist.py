"""MNIST for the digits task, offline: IDX files the tests write, a stand-in for the network,
downloads kept once in the cache and checked against their checksums."""

import gzip
import hashlib
import io
import struct

import numpy as np
import pytest

from rnnlab.plugin import ConfigError, TaskContext
from rnnlab.testing import check_task
from rnnlab_digits import mnist, register_tasks
from rnnlab_digits.task import OPTIONS, DigitsTask

SPEC = register_tasks()[0]
SIZES = {"train": 30, "t10k": 12}


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def small_mnist(seed=0) -> dict[str, bytes]:
    """The four files of a tiny MNIST: random 28x28 images, digits 0..9 in turn."""
    rng = np.random.default_rng(seed)
    files = {}
    for prefix, n in SIZES.items():
        files[f"{prefix}-images-idx3-ubyte.gz"] = idx_bytes(
            rng.integers(0, 256, (n, 28, 28)), mnist.IMAGES
        )
        files[f"{prefix}-labels-idx1-ubyte.gz"] = idx_bytes(np.arange(n) % 10, mnist.LABELS)
    return files


def md5s(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


class Network:
    """Serves ``files`` under every mirror in ``served``; counts the requests."""

    def __init__(self, files, served=("https://a/",), broken=()):
        self.files, self.served, self.broken, self.requests = files, served, broken, []

    def __call__(self, url):
        self.requests.append(url)
        mirror, name = url.rsplit("/", 1)
        if mirror + "/" in self.broken:
            return io.BytesIO(b"not the file")
        if mirror + "/" not in self.served:
            raise OSError("connection refused")
        return io.BytesIO(self.files[name])


def test_downloads_once_and_keeps_the_files(tmp_path):
    files = small_mnist()
    net = Network(files)
    paths = mnist.ensure(tmp_path, md5s(files), ("https://a/",), net)
    assert len(net.requests) == 4
    assert {p.read_bytes() for p in paths.values()} == set(files.values())
    mnist.ensure(tmp_path, md5s(files), ("https://a/",), net)
    assert len(net.requests) == 4  # nothing fetched again
    # a damaged file is fetched again, and only it
    name = "t10k-labels-idx1-ubyte.gz"
    (tmp_path / name).write_bytes(b"damaged")
    mnist.ensure(tmp_path, md5s(files), ("https://a/",), net)
    assert net.requests[4:] == ["https://a/" + name]
    assert (tmp_path / name).read_bytes() == files[name]


def test_a_wrong_checksum_moves_to_the_next_mirror(tmp_path):
    files = small_mnist()
    net = Network(files, served=("https://a/", "https://b/"), broken=("https://a/",))
    mnist.ensure(tmp_path, md5s(files), ("https://a/", "https://b/"), net)
    assert len(net.requests) == 8 and all(r.startswith("https://b/") for r in net.requests[1::2])
    assert not list(tmp_path.glob("*.part"))


def test_no_mirror_is_a_config_error_saying_where_to_put_the_file(tmp_path):
    files = small_mnist()
    with pytest.raises(ConfigError, match="download it yourself into") as info:
        mnist.ensure(tmp_path, md5s(files), ("https://a/",), Network(files, served=()))
    assert "connection refused" in str(info.value) and info.value.key == "cache"
    net = Network(files, broken=("https://a/",))
    with pytest.raises(ConfigError, match="expected"):
        mnist.ensure(tmp_path, md5s(files), ("https://a/",), net)
    assert not list(tmp_path.iterdir())  # nothing half-written is left


def test_idx_files_are_read_and_checked(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    path = tmp_path / "i.gz"
    path.write_bytes(idx_bytes(images, mnist.IMAGES))
    np.testing.assert_array_equal(mnist.read_idx(path, mnist.IMAGES), images)
    with pytest.raises(ConfigError, match="not an IDX file of labels"):
        mnist.read_idx(path, mnist.LABELS)
    path.write_bytes(gzip.compress(gzip.decompress(idx_bytes(images, mnist.IMAGES))[:-5]))
    with pytest.raises(ConfigError, match="truncated"):
        mnist.read_idx(path, mnist.IMAGES)


def test_cache_folder_order(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "a"))
    assert mnist.cache_folder(str(tmp_path / "opt")) == tmp_path / "opt" / "mnist"
    assert mnist.cache_folder("") == tmp_path / "a" / "mnist"
    monkeypatch.delenv("RNNLAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert mnist.cache_folder("") == tmp_path / "x" / "rnnlab" / "mnist"


@pytest.fixture
def cached(tmp_path, monkeypatch):
    """A cache folder holding the tiny MNIST, whose checksums the task then expects; the
    network refuses every request."""
    files = small_mnist()
    monkeypatch.setattr(mnist, "FILES", md5s(files))
    monkeypatch.setattr(mnist, "urlopen", Network(files, served=()))
    (tmp_path / "mnist").mkdir()
    for name, data in files.items():
        (tmp_path / "mnist" / name).write_bytes(data)
    return tmp_path


def build(folder, seed=0, **options):
    values = {o.name: o.default for o in OPTIONS}
    values.update(dataset="mnist", cache=str(folder), val_size=5, test_size=6)
    values.update(options)
    t = DigitsTask(values, TaskContext(folder))
    return t.build(np.random.default_rng(seed))


def test_the_task_on_mnist(cached):
    data = build(cached)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 25, "val": 5, "test": 6}
    assert data.splits["train"].x.shape == (784, 25, 1) and data.input_size == 1
    assert data.splits["train"].x.max() <= 1.0
    rows = build(cached, read="row", train_size=10)
    assert rows.splits["train"].x.shape == (28, 10, 28) and rows.input_size == 28
    permuted = build(cached, permute=True)
    assert sorted(permuted.saved["pixel_order"]) == list(range(784))
    # the test images come from MNIST's test set
    test = mnist.load(mnist.ensure(cached / "mnist"))["test"][0]
    held = {img.tobytes() for img in test}
    assert all(img.tobytes() in held for img in data.meta["images"]["test"])
    with pytest.raises(ConfigError, match="test set holds 12"):
        build(cached, test_size=13)


def test_conformance_on_mnist(cached):
    options = dict(dataset="mnist", cache=str(cached), val_size=5, test_size=6, read="row")
    check_task(SPEC, options, seeds=(0,))
