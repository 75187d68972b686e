"""Subnormal numbers flushed to zero while a chunk of the fused epoch runs (x86's MXCSR FTZ and
DAZ bits, set and restored around the chunk, on whichever thread runs it).

Why: gradients that fade through a long BPTT reach float32's subnormal range (below 1.2e-38),
where each operation costs many times a normal one: measured on this machine, a float32 epoch
at T=100 H=128 (target "last") ran 1.6x slower than float64 until flushed. A flushed value
differs from the reference by less than 1.2e-38 (float32) or 2.3e-308 (float64). On other CPUs
these are no-ops.
"""

import platform

import numpy as np
from numba import types
from numba.extending import intrinsic

from .internals import ir
from .jitcache import njit

FLUSH = 0x8040  # FTZ (bit 15): results flushed; DAZ (bit 6): subnormal inputs read as 0


def _csr_intrinsic(name):
    def codegen(context, builder, sig, args):
        slot = builder.alloca(ir.IntType(32))
        if args:
            builder.store(args[0], slot)
        fnty = ir.FunctionType(ir.VoidType(), [ir.PointerType(ir.IntType(8))])
        fn = builder.module.declare_intrinsic(name, fnty=fnty)
        builder.call(fn, [builder.bitcast(slot, ir.PointerType(ir.IntType(8)))])
        return builder.load(slot) if not args else context.get_dummy_value()

    return codegen


if platform.machine().lower() in ("x86_64", "amd64"):

    @intrinsic
    def read_csr(typingctx):
        return types.int32(), _csr_intrinsic("llvm.x86.sse.stmxcsr")

    @intrinsic
    def write_csr(typingctx, value):
        return types.void(types.int32), _csr_intrinsic("llvm.x86.sse.ldmxcsr")

    @njit(cache=True)
    def flush_subnormals():
        """Turn flushing on; return the previous control word, for ``restore``."""
        old = read_csr()
        write_csr(old | np.int32(FLUSH))
        return old

    @njit(cache=True)
    def restore(old):
        write_csr(old)

else:

    @njit(cache=True)
    def flush_subnormals():
        return 0

    @njit(cache=True)
    def restore(old):
        pass
