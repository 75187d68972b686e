"""Variable length in the reference kernels: select, never multiply by a 0/1 mask.

Forward zeroes the padded steps of its input (so their values cannot reach anything), holds a
finished sequence's state with ``np.where`` and writes 0 as its output. Backward zeroes the
incoming gradient at padded steps; since padded steps come after a sequence's last valid step,
every gradient there is then exactly 0 (finite values times 0), BPTT starts at each sequence's
own end, and padded steps add exact zeros to the weight gradients.
"""

import numpy as np

from rnnlab.plugin import valid_steps


def select_input(x, lengths):
    """``(valid [T, N, 1] or None, x with zeros at padded steps)``."""
    if lengths is None:
        return None, x
    valid = valid_steps(np.asarray(lengths), x.shape[0])[..., None]
    return valid, np.where(valid, x, 0).astype(x.dtype, copy=False)


def ignore_padding(dhs, valid):
    return dhs if valid is None else np.where(valid, dhs, 0).astype(dhs.dtype, copy=False)


def hold(valid, t, h_t, h, hs, out=None):
    """Step t of a recurrence whose output is its state: write the output of step t into
    ``hs[t]`` (``out``, default ``h_t``; 0 for a finished sequence) and return the state
    carried on (``h_t``, or ``h`` held for a finished sequence)."""
    out = h_t if out is None else out
    if valid is None:
        hs[t] = out
        return h_t
    hs[t] = np.where(valid[t], out, 0)
    return np.where(valid[t], h_t, h)
