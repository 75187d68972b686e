"""numba's on-disk cache for the backend's kernels, keyed on all of the backend's sources and
checked on every read. ``njit`` here is ``numba.njit``, with ``cache=True`` meaning this cache.

Stale code: numba keys a cached kernel on its own file only, so a kernel of epoch.py calling
``tanh`` from mathfn.py would keep running the old ``tanh`` after mathfn.py changed. Here every
kernel is cached in a folder named by a hash of every ``.py`` file of the package (its tests
excepted) and of the numba and llvmlite versions: an edit anywhere in the backend gives a new
folder, and the first run after it compiles afresh. Folders of earlier sources of the same
copy of the package are removed when a new one is made.

Damage: every index (``.nbi``) and data (``.nbc``) file carries a SHA-256 of its bytes. A file
that is empty, cut short or altered (a power cut, a full disk, a bad sector) is ignored: the
kernel compiles again and its file is rewritten, with one ``CacheWarning`` per process saying
so. A cached file that passes its check yet cannot be rebuilt by numba is treated the same way.

Processes sharing a cache (a sweep's workers, pytest's workers): numba's own ``save`` reads the
index, picks the first free data file number and writes the index and the data with no lock, so
two processes compiling different signatures of one function into a cold cache could both pick
one number, and the index could then map one signature to the other's machine code, run later
without a word. Here a save holds an exclusive lock (``flock`` on the function's ``.lock`` file)
from reading the index to writing it, writes the data before the index entry pointing at it, and
seals the signature's key inside the data file; a load whose data file holds another key reads
as a miss (the kernel compiles again, said once like damage). Loads take no lock: files are
replaced whole (written aside, then renamed), so a reader sees an old or a new file, never half.

Where: ``<NUMBA_CACHE_DIR>/rnnlab_numba-<copy>-<sources>`` when NUMBA_CACHE_DIR is set, else
``__pycache__/numba-<sources>`` beside these files, else the same name under numba's user-wide
cache folder. A NUMBA_CACHE_DIR that cannot be written is not silently replaced by another
folder: one ``CacheWarning`` says so, and the kernels compile in every process (no cache).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import itertools
import pickle
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:  # not a POSIX system: no locks (see CheckedFile.locked)
    fcntl = None

import llvmlite
import numba
from numba.core import event

from rnnlab.plugin import preparing

from . import internals

PACKAGE = Path(__file__).resolve().parent
MAGIC = b"rnnlab-numba-cache 2\n"  # then the payload's SHA-256, then the payload


class CacheWarning(UserWarning):
    """Something about the backend's kernel cache a user should know (said once per process)."""


_said: set[str] = set()


def say_once(kind: str, message: str) -> None:
    """Warn ``message`` (a CacheWarning) the first time ``kind`` happens in this process."""
    if kind not in _said:
        _said.add(kind)
        warnings.warn(message, CacheWarning, stacklevel=3)


# -- where ----------------------------------------------------------------------------------------
def sources_hash(package: Path = PACKAGE) -> str:
    """A hash of every ``.py`` file of the package (path and bytes; tests excepted) and of the
    numba and llvmlite versions."""
    h = hashlib.sha256(f"numba {numba.__version__} llvmlite {llvmlite.__version__}".encode())
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if "tests" in rel.parts[:-1] or "__pycache__" in rel.parts:
            continue
        data = path.read_bytes()
        h.update(f"\0{rel.as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:20]


def writable(folder: Path) -> str | None:
    """None when files can be written in ``folder`` (made if missing), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        return error.strerror or str(error)
    return None


def prune(root: Path, prefix: str) -> None:
    """Remove the folders beside ``root`` named ``prefix...``: earlier sources' caches."""
    for other in root.parent.glob(prefix + "*"):
        if other != root and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)


def choose_root(package: Path = PACKAGE) -> Path | None:
    """The folder the package's kernels are cached in, or None for no cache (said once)."""
    salt = sources_hash(package)
    copy = hashlib.sha1(str(package).encode()).hexdigest()[:12]
    named = f"{package.name}-{copy}-"
    if numba.config.CACHE_DIR:
        root = Path(numba.config.CACHE_DIR) / (named + salt)
        why = writable(root)
        if why is None:
            prune(root, named)
            return root
        say_once(
            "unwritable",
            f"NUMBA_CACHE_DIR={numba.config.CACHE_DIR} cannot be written ({why}): the numba "
            f"backend runs without its on-disk cache, compiling its kernels in every process. "
            f"Make that folder writable, or unset NUMBA_CACHE_DIR to cache beside the backend.",
        )
        return None
    tried = []
    for root, prefix in (
        (package / "__pycache__" / f"numba-{salt}", "numba-"),
        (Path(internals.user_cache_dir()) / (named + salt), named),
    ):
        why = writable(root)
        if why is None:
            prune(root, prefix)
            return root
        tried.append(f"{root.parent} ({why})")
    say_once(
        "unwritable",
        f"no folder to cache the numba backend's kernels in ({'; '.join(tried)}): they compile "
        f"in every process. Set NUMBA_CACHE_DIR to a writable folder to cache them.",
    )
    return None


# -- checked files --------------------------------------------------------------------------------
class Damaged(Exception):
    """A cache file whose bytes are not what was written."""


def seal(payload: bytes) -> bytes:
    return MAGIC + hashlib.sha256(payload).digest() + payload


def unseal(raw: bytes) -> bytes:
    head = len(MAGIC) + 32
    if len(raw) < head or not raw.startswith(MAGIC):
        raise Damaged("empty or cut short" if len(raw) < head else "not a cache file")
    payload = raw[head:]
    if hashlib.sha256(payload).digest() != raw[len(MAGIC) : head]:
        raise Damaged("its checksum does not match")
    return payload


def damaged(path, error: BaseException) -> None:
    say_once(
        "damaged",
        f"the numba backend's kernel cache had a damaged file ({path}: {error}); it was ignored, "
        f"and its kernels compile again and replace it (said once; the same for other files).",
    )


class CheckedFile(internals.IndexDataCacheFile):
    """numba's index and data files, each sealed with a checksum (``seal``) and read back only
    when it matches; a damaged index reads as empty, a damaged data file as missing.

    Writes are safe between processes: ``save`` holds an exclusive lock on the function's lock
    file while it reads the index, chooses a data file, writes the data and then the index
    entry pointing at it. Every data file holds the key it was compiled for, and ``load``
    returns its code only for that key: a file holding another key's code (written by a process
    that did not take the lock) reads as a miss, said once like other damage."""

    @contextlib.contextmanager
    def locked(self):
        """Hold the exclusive lock of this function's files (``<index>.lock``) for the block;
        where the system has no ``flock``, the block runs unlocked (the key check still holds)."""
        if fcntl is None:
            yield
            return
        with open(self._index_path + ".lock", "ab") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def save(self, key, data):
        with self.locked():
            overloads = self._load_index()  # read under the lock: every other entry is seen
            name = overloads.get(key) or self.free_name(set(overloads.values()))
            self._save_data(name, (key, data))  # the data first, then the entry pointing at it
            overloads[key] = name
            self._save_index(overloads)

    def free_name(self, taken: set[str]) -> str:
        """The first data file name no index entry uses."""
        return next(n for n in map(self._data_name, itertools.count(1)) if n not in taken)

    def load(self, key):
        name = self._load_index().get(key)
        if name is None:
            return None
        try:
            stored = self._load_data(name)
        except OSError:  # removed since the index was read: a miss
            return None
        if stored is None:
            return None
        stored_key, data = stored
        if stored_key != key:
            damaged(self._data_path(name), "it holds the code of another signature")
            return None
        return data

    def flush(self):
        with self.locked():
            self._save_index({})

    def _load_index(self):
        try:
            raw = Path(self._index_path).read_bytes()
        except FileNotFoundError:
            return {}
        try:
            version, stamp, overloads = pickle.loads(unseal(raw))
        except Exception as error:  # Damaged, or a sealed payload numba cannot unpickle
            damaged(self._index_path, error)
            return {}
        if version != self._version or stamp != self._source_stamp:
            return {}
        return overloads

    def _save_index(self, overloads):
        payload = self._dump((self._version, self._source_stamp, overloads))
        with self._open_for_write(self._index_path) as f:
            f.write(seal(payload))

    def _load_data(self, name):
        """``(key, data)`` as ``save`` wrote it; None when damaged (said once)."""
        path = self._data_path(name)
        raw = Path(path).read_bytes()  # OSError: load() reads that as a missing entry
        try:
            key, data = pickle.loads(unseal(raw))
        except Exception as error:
            damaged(path, error)
            return None
        return key, data

    def _save_data(self, name, data):
        with self._open_for_write(self._data_path(name)) as f:
            f.write(seal(self._dump(data)))


class Locator(internals.CacheLocator):
    """Every kernel of the package under ``root`` (by its file's folder within the package),
    stamped with the sources' hash rather than its own file's."""

    def __init__(self, py_func, py_file: str, root: Path, stamp: str):
        self._py_file, self._lineno, self._stamp = py_file, py_func.__code__.co_firstlineno, stamp
        folder = Path(py_file).resolve().parent
        try:
            self._cache_path = str(root / folder.relative_to(PACKAGE))
        except ValueError:  # a file outside the package: its own folder under root
            self._cache_path = str(root / hashlib.sha1(str(folder).encode()).hexdigest()[:12])

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return self._stamp

    def get_disambiguator(self):
        return str(self._lineno)


class Impl(internals.CompileResultCacheImpl):
    """numba's compile-result cache logic with the package's ``Locator`` (numba's own search
    over its locators, and NUMBA_CACHE_LOCATOR_CLASSES, do not apply)."""

    def __init__(self, py_func, root: Path, stamp: str):
        source = inspect.getfile(py_func)
        self._lineno = py_func.__code__.co_firstlineno
        self._locator = Locator(py_func, source, root, stamp)
        fullname = f"{Path(source).stem}.{py_func.__qualname__}"
        self._filename_base = self.get_filename_base(fullname, getattr(sys, "abiflags", ""))


class CheckedCache(internals.FunctionCache):
    """numba's per-function cache over ``Impl`` and ``CheckedFile``; a cached entry that numba
    cannot rebuild is recompiled, and a failed write leaves the kernel uncached (both said
    once), never an error."""

    def __init__(self, py_func, root: Path, stamp: str):
        self._impl_class = functools.partial(Impl, root=root, stamp=stamp)
        super().__init__(py_func)
        self._cache_file = CheckedFile(self._cache_path, self._impl.filename_base, stamp)

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception as error:
            damaged(self._cache_path, error)
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except OSError as error:
            say_once(
                "write",
                f"the numba backend could not write its kernel cache in {self._cache_path} "
                f"({error}); the kernels it could not store compile again in the next process.",
            )


ROOT = choose_root()
STAMP = ROOT.name if ROOT is not None else ""


# -- what a call compiles, said as it happens ---------------------------------------------------
def kept_where() -> str:
    """Where compiled kernels are kept, as the user reads it."""
    if ROOT is None:
        return "no writable cache folder: every process compiles them again"
    return f"once per machine: kept in {ROOT}"


def ready(dispatcher, args: tuple) -> bool:
    """Whether calling ``dispatcher(*args)`` runs without compiling: its code for these
    argument types is compiled in this process or in the on-disk cache."""
    types = tuple(dispatcher.typeof_pyval(a) for a in args)
    return types in dispatcher.overloads or internals.on_disk(dispatcher, types)


@contextlib.contextmanager
def compiling(task: str):
    """Run the block; if numba compiles anything in it (a load from the cache is not
    compiling), say so with ``rnnlab.plugin.preparing("compiling " + task, kept_where())``
    from the first compilation to the end of the block."""
    said, started = contextlib.ExitStack(), []

    class Said(event.Listener):
        def on_start(self, ev):
            if not started:
                started.append(True)
                said.enter_context(preparing(f"compiling {task}", kept_where()))

        def on_end(self, ev):
            pass

    listener = Said()
    event.register("numba:compile", listener)
    try:
        with said:
            yield
    finally:
        event.unregister("numba:compile", listener)


def njit(*args, cache: bool = False, **options):
    """``numba.njit(**options)``; with ``cache=True`` the kernel is cached in ``ROOT`` through
    ``CheckedCache`` (not at all when ``ROOT`` is None)."""

    def wrap(func):
        dispatcher = numba.njit(**options)(func)
        if cache and ROOT is not None:
            internals.attach_cache(dispatcher, CheckedCache(func, ROOT, STAMP))
        return dispatcher

    if args:
        (func,) = args
        return wrap(func)
    return wrap
