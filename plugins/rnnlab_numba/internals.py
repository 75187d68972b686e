"""Everything the backend takes from numba's and llvmlite's internals rather than their public
API, in one place, and ``check()``, which finds out whether an upgrade changed them.

Users of these names: simd.py and fpenv.py (LLVM IR written by hand: numba's code-generation
helpers, a function attribute llvmlite's attribute set does not accept), jitcache.py (numba's
on-disk cache classes, subclassed to key the cache on all of the backend's sources, to check
every file it reads and to lock its writes between processes; ``on_disk``, whether a call would
load rather than compile). Public APIs (``numba.njit``, ``numba.extending.intrinsic``,
``llvmlite.ir``'s builder, ``numba.core.event``) are used directly where needed.

Tested with the versions ``TESTED`` names (pyproject.toml pins that range). ``check()`` runs when
the backend loads; on a mismatch it raises ``InternalsChanged`` naming the installed versions
and what changed, instead of an AttributeError deep in a compile.
"""

from __future__ import annotations

import inspect

import llvmlite
import llvmlite.binding as llvm
import numba
from llvmlite import ir
from numba.core import caching, cgutils
from numba.misc.appdirs import AppDirs

TESTED = "numba 0.68 with llvmlite 0.50"

# -- LLVM IR helpers (simd.py, fpenv.py) ----------------------------------------------------------
alloca_once = cgutils.alloca_once
for_range = cgutils.for_range
get_or_insert_function = cgutils.get_or_insert_function


def host_has(feature: str) -> bool:
    """Whether the host CPU has ``feature`` (LLVM's name: "avx512f", ...)."""
    return bool(llvm.get_host_cpu_features().get(feature, False))


def add_string_attribute(function: ir.Function, attribute: str) -> bool:
    """Give an LLVM function a string attribute (``'"key"="value"'``). llvmlite's attribute set
    takes only the attribute names it knows, so this one goes in through the set underneath.
    False when that failed (the function is left as it was)."""
    try:
        set.add(function.attributes, attribute)
    except TypeError:
        return False
    return True


# -- numba's on-disk cache (jitcache.py) ----------------------------------------------------------
CacheLocator = caching._CacheLocator
CompileResultCacheImpl = caching.CompileResultCacheImpl
FunctionCache = caching.FunctionCache
IndexDataCacheFile = caching.IndexDataCacheFile


def user_cache_dir() -> str:
    """numba's user-wide cache folder (where numba caches a file it cannot cache beside)."""
    return AppDirs(appname="numba", appauthor=False).user_cache_dir


def attach_cache(dispatcher, cache) -> None:
    """Make ``cache`` the on-disk cache of a jitted function (what ``cache=True`` does with
    numba's own cache class)."""
    dispatcher._cache = cache


def on_disk(dispatcher, args: tuple) -> bool:
    """Whether the on-disk cache of a jitted function holds its compiled code for these
    argument types (a cache load, not a compile, would serve the call)."""
    cache = dispatcher._cache
    if not isinstance(cache, FunctionCache):  # numba's NullCache: no on-disk cache
        return False
    key = cache._index_key(args, dispatcher.targetctx.codegen())
    return key in cache._cache_file._load_index()


class InternalsChanged(RuntimeError):
    """numba or llvmlite no longer has what the backend relies on."""


def _params(func) -> list[str]:
    return list(inspect.signature(func).parameters)


def problems() -> list[str]:
    """What differs from the internals the backend was written against (empty: nothing)."""
    found = []

    def expect(what: str, ok) -> None:
        try:
            good = ok()
        except Exception as error:  # an internal that moved raises anything at all
            good, what = False, f"{what} ({type(error).__name__}: {error})"
        if not good:
            found.append(what)

    expect(
        "cgutils.alloca_once(builder, ty, ...)",
        lambda: _params(alloca_once)[:2] == ["builder", "ty"],
    )
    expect(
        "cgutils.for_range(builder, count, ...)",
        lambda: _params(for_range)[:2] == ["builder", "count"],
    )
    expect(
        "cgutils.get_or_insert_function(module, fnty, name)",
        lambda: _params(get_or_insert_function) == ["module", "fnty", "name"],
    )
    expect(
        "llvmlite.binding.get_host_cpu_features()",
        lambda: hasattr(llvm.get_host_cpu_features(), "get"),
    )

    def attribute_set():
        fn = ir.Function(ir.Module(), ir.FunctionType(ir.VoidType(), []), "f")
        return isinstance(fn.attributes, set) and add_string_attribute(fn, '"a"="b"')

    expect("ir.Function.attributes is a set that takes a string attribute", attribute_set)
    expect("numba.core.dispatcher.Dispatcher._cache", _dispatcher_has_cache)
    expect(
        "caching._CacheLocator's abstract methods",
        lambda: (
            CacheLocator.__abstractmethods__
            == {"get_cache_path", "get_source_stamp", "get_disambiguator"}
        ),
    )
    expect(
        "caching.CompileResultCacheImpl.get_filename_base(fullname, abiflags)",
        lambda: (
            _params(CompileResultCacheImpl.get_filename_base) == ["self", "fullname", "abiflags"]
        ),
    )
    expect(
        "caching.IndexDataCacheFile(cache_path, filename_base, source_stamp)",
        lambda: (
            _params(IndexDataCacheFile.__init__)
            == ["self", "cache_path", "filename_base", "source_stamp"]
        ),
    )
    for name in ("_data_name", "_data_path", "_dump", "_open_for_write"):
        expect(
            f"caching.IndexDataCacheFile.{name}",
            lambda n=name: callable(getattr(IndexDataCacheFile, n)),
        )
    expect(
        "IndexDataCacheFile has _index_path and _version",
        lambda: {"_index_path", "_version"} <= set(IndexDataCacheFile.__init__.__code__.co_names),
    )
    expect(
        "caching.Cache reads and writes through self._cache_file.load/save and self._impl",
        lambda: (
            {"_cache_file", "_impl", "load"} <= set(FunctionCache._load_overload.__code__.co_names)
            and {"_cache_file", "_impl", "save"}
            <= set(FunctionCache._save_overload.__code__.co_names)
        ),
    )
    expect("numba.misc.appdirs.AppDirs", lambda: isinstance(user_cache_dir(), str))
    expect(
        "caching.Cache._index_key(sig, codegen), Dispatcher.targetctx",
        lambda: (
            _params(FunctionCache._index_key) == ["self", "sig", "codegen"]
            and hasattr(numba.njit(lambda: None), "targetctx")
        ),
    )
    return found


def _dispatcher_has_cache() -> bool:
    disp = numba.njit(lambda: None)
    return isinstance(disp._cache, caching.NullCache)


def versions() -> str:
    return f"numba {numba.__version__} with llvmlite {llvmlite.__version__}"


def check() -> None:
    """Raise ``InternalsChanged`` when an internal the backend uses is missing or different."""
    found = problems()
    if found:
        raise InternalsChanged(
            f"the numba backend was written against {TESTED}; the installed {versions()} "
            f"changed what it relies on: {'; '.join(found)}. Install the tested versions "
            f"(pip install 'numba==0.68.*' 'llvmlite==0.50.*') or use another backend."
        )
