"""The numba backend's kernel cache shared by processes (jitcache.CheckedFile): a save holds the
function's lock from reading the index to writing it, writes the data before the index entry,
and seals the key inside the data; a load never returns code written for another key.

The interleavings are played step by step in threads taking turns (no timing): every order of
two saves' steps, against numba's own file class (which can hand one key the other's code) and
against CheckedFile without its lock (which never does). Then two real processes compile two
signatures of one function into one fresh cache at once, and a third loads both."""

import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

pytest.importorskip("numba")

from rnnlab_numba import internals, jitcache  # noqa: E402

KEYS = {"A": ("signature", "int64"), "B": ("signature", "float64")}
CODE = {"A": "code compiled for int64", "B": "code compiled for float64"}
STEPS = ("_load_index", "_save_index", "_save_data")


class Turns:
    """Two savers, each in its own thread, taking the steps of ``order`` ("ABBA..."): a saver
    waits at each step (a file read or write of ``save``) until the order says it is its turn."""

    def __init__(self, order: str):
        self.order, self.at, self.cond = order, 0, threading.Condition()
        self.errors: list[BaseException] = []

    def step(self, who: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.errors or self.order[self.at : self.at + 1] == who)
            if self.errors:
                raise RuntimeError("the other saver failed")

    def fail(self, error: BaseException) -> None:
        with self.cond:
            self.errors.append(error)
            self.cond.notify_all()

    def done(self) -> None:
        with self.cond:
            self.at += 1
            self.cond.notify_all()


def taking_turns(base):
    """``base`` with each of its file steps waiting for its turn while ``save`` runs."""

    class Taking(base):
        turns: Turns | None = None
        who = ""

        def save(self, key, data):
            turns = self.turns
            try:
                super().save(key, data)
            except BaseException as error:
                turns.fail(error)
            finally:
                self.turns = None

        def __getattribute__(self, name):
            attr = super().__getattribute__(name)
            if name not in STEPS:
                return attr
            turns, who = super().__getattribute__("turns"), super().__getattribute__("who")
            if turns is None:
                return attr

            def in_turn(*args):
                turns.step(who)
                try:
                    return attr(*args)
                finally:
                    turns.done()

            return in_turn

    return Taking


def play(base, folder: Path, order: str) -> dict:
    """Two files of ``base`` on ``folder``, saving KEYS["A"] and KEYS["B"] with their steps in
    ``order``; then what a fresh file loads for each key."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for who in "AB":
        f = taking_turns(base)(str(folder), "probe-1.py311", "stamp")
        f.who, f.turns = who, None
        files[who] = f
    turns = Turns(order)
    for f in files.values():
        f.turns = turns
    threads = [
        threading.Thread(target=files[w].save, args=(KEYS[w], CODE[w]), daemon=True) for w in "AB"
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), f"order {order}: a saver waits for a turn that never comes"
    assert not turns.errors, turns.errors
    fresh = base(str(folder), "probe-1.py311", "stamp")
    return {w: fresh.load(KEYS[w]) for w in "AB"}


def orders() -> list[str]:
    """Every interleaving of two saves of three file steps each."""
    return sorted({"".join(p) for p in itertools.permutations("AAABBB")})


@pytest.fixture
def no_flock(monkeypatch):
    """CheckedFile as on a system without flock: what the key check alone guarantees."""
    monkeypatch.setattr(jitcache, "fcntl", None)


def test_numbas_own_file_class_can_hand_a_key_the_other_keys_code(tmp_path):
    """The race itself, played deterministically: the scenario below catches it."""
    wrong = []
    for i, order in enumerate(orders()):
        got = play(internals.IndexDataCacheFile, tmp_path / str(i), order)
        if any(got[w] is not None and got[w] != CODE[w] for w in "AB"):
            wrong.append(order)
    assert wrong  # e.g. AABBBA: both pick data file 1, B's entry points at A's code


@pytest.mark.parametrize("order", orders())
def test_without_its_lock_a_key_loads_its_own_code_or_nothing(
    tmp_path, no_flock, order, recwarn, monkeypatch
):
    monkeypatch.setattr(jitcache, "_said", set())
    got = play(jitcache.CheckedFile, tmp_path, order)
    for who in "AB":
        assert got[who] in (CODE[who], None), f"{who} loaded {got[who]!r}"
    for said in recwarn:  # a data file with the other key's code: a miss, said
        assert issubclass(said.category, jitcache.CacheWarning)
        assert "another signature" in str(said.message)
    if order in ("AAABBB", "BBBAAA"):  # one save after the other: both kept
        assert got == CODE


def test_a_data_file_holding_another_keys_code_reads_as_a_miss_said_once(
    tmp_path, recwarn, monkeypatch
):
    a = jitcache.CheckedFile(str(tmp_path), "probe-1.py311", "stamp")
    a.save(KEYS["A"], CODE["A"])
    a.save(KEYS["B"], CODE["B"])
    index = a._load_index()
    data_a, data_b = (Path(a._data_path(index[KEYS[w]])) for w in "AB")
    data_a.write_bytes(data_b.read_bytes())  # A's entry now points at B's sealed code
    monkeypatch.setattr(jitcache, "_said", set())
    assert a.load(KEYS["A"]) is None and a.load(KEYS["B"]) == CODE["B"]
    said = [w for w in recwarn if issubclass(w.category, jitcache.CacheWarning)]
    assert len(said) == 1 and "another signature" in str(said[0].message)
    a.save(KEYS["A"], CODE["A"])  # recompiled: rewritten in place
    assert a.load(KEYS["A"]) == CODE["A"]


@pytest.mark.skipif(jitcache.fcntl is None, reason="no flock on this system")
def test_a_save_holds_the_lock_from_reading_the_index_to_writing_it(tmp_path):
    """Every file step of a save runs while another open of the lock file cannot take it; a
    file whose index view was read before another's save still keeps both entries."""
    import fcntl

    seen = []

    class Watched(jitcache.CheckedFile):
        def held(self) -> bool:
            with open(self._index_path + ".lock", "ab") as other:
                try:
                    fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(other.fileno(), fcntl.LOCK_UN)
                return False

        def _load_index(self):
            seen.append(("_load_index", self.held()))
            return super()._load_index()

        def _save_data(self, name, data):
            seen.append(("_save_data", self.held()))
            super()._save_data(name, data)

        def _save_index(self, overloads):
            seen.append(("_save_index", self.held()))
            super()._save_index(overloads)

    a = Watched(str(tmp_path), "probe-1.py311", "stamp")
    b = Watched(str(tmp_path), "probe-1.py311", "stamp")
    assert b.load(KEYS["B"]) is None  # b's view: an empty cache (it compiles B)
    seen.clear()
    a.save(KEYS["A"], CODE["A"])
    assert seen == [("_load_index", True), ("_save_data", True), ("_save_index", True)]
    b.save(KEYS["B"], CODE["B"])
    assert {w: a.load(KEYS[w]) for w in "AB"} == CODE
    assert len(set(a._load_index().values())) == 2


# -- two processes, one fresh cache ---------------------------------------------------------------
PROBE = """
from rnnlab_numba.jitcache import njit


@njit(cache=True)
def probe(x):
    return x * 3 + 1
"""

COMPILE = """
    import json, os, sys, time
    from pathlib import Path
    gate = Path(sys.argv[1])
    (gate / sys.argv[2]).touch()
    while len(list(gate.iterdir())) < 2:  # both processes start compiling together
        time.sleep(0.001)
    import numpy as np
    from probe import probe
    value = probe(np.int64(5) if sys.argv[2] == "int" else 2.5)
    print(json.dumps([float(value), sum(probe.stats.cache_misses.values())]))
"""

LOAD = """
    import json
    import numpy as np
    from probe import probe
    values = [int(probe(np.int64(5))), probe(2.5)]
    stats = probe.stats
    print(json.dumps([values, sum(stats.cache_hits.values()), sum(stats.cache_misses.values())]))
"""


def python(code: str, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return json.loads(out.splitlines()[-1]), err


def test_two_processes_compiling_two_signatures_into_one_cache(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    gate = tmp_path / "gate"
    gate.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    procs = [python(COMPILE, env, str(gate), kind) for kind in ("int", "float")]
    (int_run, _), (float_run, _) = (finish(p) for p in procs)
    assert int_run == [16.0, 1] and float_run == [8.5, 1]  # each compiled its own signature
    (values, hits, misses), err = finish(python(LOAD, env))
    assert values == [16, 8.5] and (hits, misses) == (2, 0), err
    assert "CacheWarning" not in err
    (nbi,) = (tmp_path / "cache").rglob("probe.probe-*.nbi")
    assert len(list(nbi.parent.glob("probe.probe-*.nbc"))) == 2
