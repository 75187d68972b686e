"""Register-blocked multiply-add micro-kernels written as explicit LLVM vector code:
``O[i, :] += sum_k A[i, k] B[k, :]`` over a block of NR rows and NV vectors of columns, the
block's sums held in registers for the whole k loop (blocks.py builds every product on them).

Why explicit vectors: numba hands LLVM the host CPU, and for AVX-512 Intel cores LLVM's
vectorisers then prefer 256-bit vectors (the ``prefer-256-bit`` tuning), so loops written in
Python never use the 512-bit registers, half of what the FMA units take per instruction
(measured here: the outer-product loops of blocks.py topped at ~45 GFLOP/s float64 on one core,
where 512-bit products reach 93). A ``<8 x double>`` value written in the IR is lowered to
one 512-bit register whatever that tuning says. The vector width is the host's widest
(``VBYTES``: 64 bytes with AVX-512F, else 32; numba's cache is keyed on the host CPU).

Why a register block: the loops of blocks.py read and wrote each output vector once per k
(or four k), so loads and stores, not multiplies, bounded them. Here each k costs NV vector
loads of B's row and NR broadcasts of A's column for NR * NV fused multiply-adds. 8 rows x 2
vectors measured best at the products' sizes (R = 8 rows, 128 x 128 weights: 77 GFLOP/s
float64 on one core against 30 for the loops it replaces, 171 against 79 in float32).

Arithmetic: each output element is its old value plus the products in k order, one fused
multiply-add per k (a fixed order: the same bits whatever thread runs a block). Operands are
raw addresses and strides in elements (``A`` by row and k stride, so that ``A`` may be a
transposed view; ``B`` and ``O`` rows contiguous), so that one kernel serves every product;
callers keep the arrays alive and the blocks in bounds.
"""

from numba import types
from numba.extending import intrinsic

from .internals import (
    add_string_attribute,
    alloca_once,
    for_range,
    get_or_insert_function,
    host_has,
    ir,
)

VBYTES = 64 if host_has("avx512f") else 32
I64 = ir.IntType(64)


def _const(n):
    return ir.Constant(I64, n)


def block_kernel(NR: int, NV: int, masked: bool = False):
    """An intrinsic ``k(out, lhs, rhs, K, like)``: for i < NR, ``O[i, :w] += sum_{k < K}
    A[i, k] B[k, :w]``, w = NV vectors of ``VBYTES``, the element type ``like``'s dtype.
    ``out = (o, o_rs)``, ``lhs = (a, a_rs, a_ks)``, ``rhs = (b, b_rs)``: addresses ``o``,
    ``a``, ``b`` and strides in elements; ``O[i, c]`` is at ``o + (i o_rs + c)``, ``A[i, k]``
    at ``a + (i a_rs + k a_ks)`` and ``B[k, c]`` at ``b + (k b_rs + c)`` elements. ``masked``:
    ``k(out, lhs, rhs, K, w, like)`` with w itself (fewer than NV vectors' columns) before
    ``like``: the columns from w on are neither read nor
    written (masked loads and stores), so that one block covers a row's last columns (they
    took one scalar block per column, each its own pass over B)."""

    def typer(out, lhs, rhs, like):
        dt = like.dtype
        groups = ((out, 2), (lhs, 3), (rhs, 2))
        for group, n in groups:  # (address, strides...): integers (an address may be unsigned)
            if not isinstance(group, types.BaseTuple) or len(group) != n:
                return None
            if not all(isinstance(x, types.Integer) for x in group):
                return None
        sig = types.void(out, lhs, rhs, *([types.intp] * (2 if masked else 1)), like)

        def codegen(context, builder, signature, args):
            def ints(i):  # the members of tuple argument i, as intp
                group = signature.args[i]
                return [
                    context.cast(builder, builder.extract_value(args[i], j), group[j], types.intp)
                    for j in range(len(group))
                ]

            (o_a, o_rs_), (a_a, a_rs_, a_ks_), (b_a, b_rs_) = ints(0), ints(1), ints(2)
            K_ = args[3]
            et = context.get_value_type(dt)
            size = context.get_abi_sizeof(et)
            lanes = VBYTES // size
            vt = ir.VectorType(et, lanes)
            name = f"llvm.fma.v{lanes}f{8 * size}"
            fma = get_or_insert_function(builder.module, ir.FunctionType(vt, [vt] * 3), name)

            def at(base, offset, ty):  # address base + offset elements, as a pointer to ty
                byte = builder.add(base, builder.mul(offset, _const(size)))
                return builder.inttoptr(byte, ty.as_pointer())

            def row(base, stride, i, n):  # element (i, n * lanes) of a row-strided block
                return builder.add(builder.mul(stride, _const(i)), _const(n * lanes))

            if masked:  # lane l of vector n is column n * lanes + l: live while < w
                i32 = ir.IntType(32)
                mt, vi = ir.VectorType(ir.IntType(1), lanes), ir.VectorType(I64, lanes)
                w = builder.insert_element(ir.Constant(vi, ir.Undefined), args[4], _const(0))
                zero32 = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
                w = builder.shuffle_vector(w, ir.Constant(vi, ir.Undefined), zero32)
                cols = [ir.Constant(vi, [n * lanes + j for j in range(lanes)]) for n in range(NV)]
                masks = [builder.icmp_signed("<", c, w) for c in cols]
                suffix = f"v{lanes}f{8 * size}.p0"
                mload = get_or_insert_function(
                    builder.module,
                    ir.FunctionType(vt, [vt.as_pointer(), i32, mt, vt]),
                    "llvm.masked.load." + suffix,
                )
                mstore = get_or_insert_function(
                    builder.module,
                    ir.FunctionType(ir.VoidType(), [vt, vt.as_pointer(), i32, mt]),
                    "llvm.masked.store." + suffix,
                )
                zeros = ir.Constant(vt, [0.0] * lanes)

            def load(p, n):
                if masked:
                    return builder.call(mload, [p, ir.Constant(i32, size), masks[n], zeros])
                return builder.load(p, align=size)

            def store(v, p, n):
                if masked:
                    builder.call(mstore, [v, p, ir.Constant(i32, size), masks[n]])
                else:
                    builder.store(v, p, align=size)

            acc = [[alloca_once(builder, vt) for _ in range(NV)] for _ in range(NR)]
            for i in range(NR):
                for n in range(NV):
                    p = at(o_a, row(o_a, o_rs_, i, n), vt)
                    builder.store(load(p, n), acc[i][n])
            undef = ir.Constant(vt, ir.Undefined)
            splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
            with for_range(builder, K_) as loop:
                k = loop.index
                b_k = builder.mul(k, b_rs_)
                bs = [load(at(b_a, builder.add(b_k, _const(n * lanes)), vt), n) for n in range(NV)]
                a_k = builder.mul(k, a_ks_)
                for i in range(NR):
                    s = builder.load(at(a_a, builder.add(a_k, builder.mul(a_rs_, _const(i))), et))
                    s = builder.insert_element(undef, s, ir.Constant(ir.IntType(32), 0))
                    s = builder.shuffle_vector(s, undef, splat)
                    for n in range(NV):
                        total = builder.call(fma, [s, bs[n], builder.load(acc[i][n])])
                        builder.store(total, acc[i][n])
            for i in range(NR):
                for n in range(NV):
                    p = at(o_a, row(o_a, o_rs_, i, n), vt)
                    store(builder.load(acc[i][n]), p, n)
            return context.get_dummy_value()

        return sig, codegen

    if masked:

        @intrinsic
        def kernel_masked(typingctx, out, lhs, rhs, K, w, like):
            return typer(out, lhs, rhs, like)

        return kernel_masked

    @intrinsic
    def kernel(typingctx, out, lhs, rhs, K, like):
        return typer(out, lhs, rhs, like)

    return kernel


# the blocks blocks.py tiles a product with: 8, 4 or 1 rows by 2 vectors (a single row: 4
# first), 1 vector or the last columns (fewer than a vector's: masked)
ROWS = (8, 4, 1)
K8x2, K8x1, K8m = block_kernel(8, 2), block_kernel(8, 1), block_kernel(8, 1, masked=True)
K4x2, K4x1, K4m = block_kernel(4, 2), block_kernel(4, 1), block_kernel(4, 1, masked=True)
K1x2, K1x1, K1m = block_kernel(1, 2), block_kernel(1, 1), block_kernel(1, 1, masked=True)
# a single row waits on one chain of dependent multiply-adds per vector: four vectors keep four
# chains going (with two, batch-1 products ran 1.4-1.8x slower than the loops these replaced).
# Every block sums each element in k order alone, so a row's bits never depend on its block.
K1x4 = block_kernel(1, 4)


@intrinsic
def wide_vectors(typingctx):
    """Called first thing in a kernel: lets LLVM's loop vectoriser use ``VBYTES``-wide vectors
    in the calling function (the ``prefer-vector-width`` function attribute, which overrides the
    CPU's 256-bit preference for that function alone). For the elementwise loops of the cells
    (gate nonlinearities: about 15% faster per unit at H=32 here). Should adding the attribute
    fail (internals.add_string_attribute), the function keeps the default width (same results:
    the vector width changes no element's arithmetic)."""

    def codegen(context, builder, signature, args):
        add_string_attribute(builder.function, f'"prefer-vector-width"="{8 * VBYTES}"')
        return context.get_dummy_value()

    return types.void(), codegen
