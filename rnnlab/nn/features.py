"""Features: what a plan or a model uses, as strings a backend's fast path declares it covers.

A string field gives ``"name=value"`` (``"cell=lstm"``, ``"loss=xent"``); any other field gives
``"name"`` when it is set (true, non-zero, not None, not empty: ``"momentum"``, ``"lengths"``)
and nothing when it is off; nested dataclasses are walked. Being derived from every field, a
field added later is a feature no existing declaration holds, so a fast path written before it
declines what it cannot know about (see ``Backend.epoch_features`` and
``Backend.forward_features``).
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass


def features_of(obj, skip: frozenset[str] = frozenset()) -> frozenset[str]:
    """The features of dataclass ``obj``, leaving out the fields named in ``skip``."""
    return frozenset(_walk(obj, skip))


def _walk(obj, skip: frozenset[str]):
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in skip:
            continue
        if is_dataclass(value):
            yield from _walk(value, skip)
        elif isinstance(value, str):
            yield f"{f.name}={value}"
        elif (
            value is not None
            and not (isinstance(value, (bool, int, float)) and value == 0)
            and not (hasattr(value, "__len__") and len(value) == 0)
        ):
            yield f.name
