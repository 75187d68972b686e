"""The numba backend's kernel cache (jitcache.py): an edit to any of its files runs the new code,
a damaged cache file is recompiled (said once) with the same bytes as a fresh cache, and a
NUMBA_CACHE_DIR that cannot be written is said so and never replaced by the package's folder.

Each case runs small kernels in fresh processes, on a cache folder of its own."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("numba")

import rnnlab_numba  # noqa: E402

PACKAGE = Path(rnnlab_numba.__file__).parent

# tanh64 (mathfn.py) on a few inputs: what the cache holds, its hits and misses, the warnings
TANH = """
    import json, warnings
    warnings.simplefilter("always")
    from {pkg} import mathfn
    values = [mathfn.tanh64(x).hex() for x in (-3.0, -0.5, 0.25, 1.5)]
    stats = mathfn.tanh64.stats
    print(json.dumps([values, sum(stats.cache_hits.values()), sum(stats.cache_misses.values())]))
"""
# rnn.py's activate, which calls mathfn's tanh: a kernel of one file using another's function
ACTIVATE = """
    import json
    import numpy as np
    from {pkg} import rnn
    z = np.array([[-3.0, -0.5, 0.25, 1.5]])
    rnn.activate(z, False)
    stats = rnn.activate.stats
    print(json.dumps([z[0].tolist(), sum(stats.cache_hits.values())]))
"""


def run(code: str, cache, path=None, pkg: str = "rnnlab_numba"):
    """``code`` in a fresh process with NUMBA_CACHE_DIR=cache (None: unset): (its last line as
    JSON, its stderr)."""
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = str(cache)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code.format(pkg=pkg))],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


def copy_package(tmp_path: Path, name: str = "numbacopy") -> Path:
    """The backend's files under another package name (its tests and caches left out)."""
    shutil.copytree(PACKAGE, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    return tmp_path / name


def cache_files(cache: Path, suffix: str) -> list[Path]:
    return sorted(p for p in cache.rglob(f"*{suffix}") if "tanh64" in p.name)


def test_an_edit_to_a_helper_file_runs_the_new_code(tmp_path):
    pkg = copy_package(tmp_path)
    cache = tmp_path / "cache"
    (before, hits), _ = run(ACTIVATE, cache, tmp_path, pkg.name)
    assert hits == 0
    (again, hits), _ = run(ACTIVATE, cache, tmp_path, pkg.name)
    assert (again, hits) == (before, 1)  # unchanged sources: loaded from the cache
    mathfn = pkg / "mathfn.py"
    line = "    return math.copysign(e / (e + 2.0), x)\n"
    assert mathfn.read_text().count(line) == 1
    mathfn.write_text(mathfn.read_text().replace(line, line.rstrip("\n") + " + 1.0\n"))
    (after, hits), _ = run(ACTIVATE, cache, tmp_path, pkg.name)
    assert hits == 0
    assert after == [v + 1.0 for v in before]


def test_the_cache_lives_in_numba_cache_dir_under_the_sources_hash(tmp_path):
    from rnnlab_numba.jitcache import sources_hash

    cache = tmp_path / "cache"
    run(TANH, cache)
    (folder,) = cache.iterdir()
    assert folder.name.startswith("rnnlab_numba-") and folder.name.endswith(sources_hash())
    assert cache_files(cache, ".nbi") and cache_files(cache, ".nbc")


@pytest.mark.parametrize("suffix", [".nbc", ".nbi"])
@pytest.mark.parametrize("damage", ["zero-byte", "truncated", "bit-flipped"])
def test_a_damaged_cache_file_is_recompiled_and_said_once(tmp_path, damage, suffix):
    cache = tmp_path / "cache"
    (fresh, hits, misses), _ = run(TANH, cache)
    assert (hits, misses) == (0, 1)
    (path,) = cache_files(cache, suffix)
    data = bytearray(path.read_bytes())
    if damage == "zero-byte":
        data = b""
    elif damage == "truncated":
        data = data[: len(data) // 3]
    else:
        data[len(data) * 2 // 3] ^= 0x10
    path.write_bytes(bytes(data))
    (values, hits, misses), err = run(TANH, cache)
    assert values == fresh and (hits, misses) == (0, 1)
    assert err.count("CacheWarning") == 1 and "damaged" in err and path.name in err
    (values, hits, misses), err = run(TANH, cache)  # rewritten: a clean load again
    assert values == fresh and (hits, misses) == (1, 0) and "CacheWarning" not in err


def test_unwritable_numba_cache_dir_is_said_once_and_nothing_lands_in_the_package(tmp_path):
    pkg = copy_package(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = blocker / "cache"  # below a file: no process can create it, root included
    (values, hits, misses), err = run(TANH, cache, tmp_path, pkg.name)
    assert (hits, misses) == (0, 1)
    assert err.count("CacheWarning") == 1 and f"NUMBA_CACHE_DIR={cache}" in err
    assert "without its on-disk cache" in err
    assert not list(pkg.rglob("*.nbi")) and not list(pkg.rglob("*.nbc"))
    (again, hits, misses), _ = run(TANH, cache, tmp_path, pkg.name)
    assert again == values and (hits, misses) == (0, 1)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_numba_cache_dir(tmp_path):
    pkg = copy_package(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        _, err = run(TANH, cache, tmp_path, pkg.name)
    finally:
        cache.chmod(0o755)
    assert err.count("CacheWarning") == 1 and not list(pkg.rglob("*.nbi"))


def test_without_numba_cache_dir_the_cache_is_beside_the_package(tmp_path):
    pkg = copy_package(tmp_path)
    (_, hits, misses), _ = run(TANH, None, tmp_path, pkg.name)
    (folder,) = (pkg / "__pycache__").glob("numba-*")
    assert cache_files(folder, ".nbi")
    (_, hits, misses), _ = run(TANH, None, tmp_path, pkg.name)
    assert (hits, misses) == (1, 0)
    # after an edit, the earlier sources' folder is replaced by the new one
    (pkg / "lengths.py").write_text((pkg / "lengths.py").read_text() + "\n# edited\n")
    run(TANH, None, tmp_path, pkg.name)
    (newer,) = (pkg / "__pycache__").glob("numba-*")
    assert newer != folder
