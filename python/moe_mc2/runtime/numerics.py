"""How a tile's matmul accumulates in fp32 on each device, and the fused epilogue.

The contract asks for fp32 accumulation and one rounding to x's dtype. What that costs differs:
- float32 x: an fp32 matmul.
- CUDA float16/bfloat16: bmm with out_dtype=float32 (cuBLAS accumulates in fp32).
- CPU float16: no fast fp16 GEMM exists on CPU (about 1 GFLOP/s measured here), so the tile
  and the weight block are upcast to fp32 (exact products, fp32 sums, one rounding).
- CPU bfloat16: oneDNN's bf16 GEMM accumulates in fp32 but can only write bf16 (about 5x
  faster than fp32 here). Its result is rounded once before the fp32 epilogue, so with a bias
  or an activation y1/y3 may differ from the one-rounding result by one bf16 rounding.
"""
from __future__ import annotations

import itertools

import torch

from ..contract import activations


class TileMath:
    def __init__(self, dtype: torch.dtype, device: torch.device):
        self.dtype = dtype
        self.upcast = dtype != torch.float32 and (device.type == "cpu" and dtype == torch.float16)
        self.out_dtype_kw = dtype != torch.float32 and device.type == "cuda"

    @property
    def rounds_before_epilogue(self) -> int:
        """1 where the GEMM itself rounds to x's dtype (bf16 on CPU), else 0."""
        return int(self.dtype != torch.float32 and not self.upcast and not self.out_dtype_kw)

    def weight_block(self, w: torch.Tensor) -> torch.Tensor:
        """The weight slice in the dtype the matmul reads (a copy only when upcasting)."""
        return w.float() if self.upcast else w

    def product(self, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """a @ w (batched) with fp32 accumulation, for w prepared by weight_block. The result is
        fp32, or x's dtype where the GEMM can only write that (bf16 on CPU, see above): the
        epilogue converts it piece by piece rather than holding a tile-sized fp32 copy."""
        if self.upcast:
            return torch.bmm(a.float(), w)
        if self.out_dtype_kw:
            return torch.bmm(a, w, out_dtype=torch.float32)
        return torch.bmm(a, w)


EPILOGUE_CHUNK = 1 << 16  # fp32 elements (256 KiB) per piece: cache-resident temporaries


def epilogue(acc: torch.Tensor, bias32, act: int, y1_dst, y3_dst, poll=None) -> None:
    """acc (+ bias) -> y3, act -> y1, each rounded once into its destination view.

    `acc` is TileMath.product's result (fp32 ones are clobbered). Works on row pieces of at most
    EPILOGUE_CHUNK elements: a tile-sized temporary would be a fresh mmap that page-faults on
    every call and streams from DRAM on every pass. `poll()`, when given, is called after each
    piece (the pipeline moves its communication on meanwhile).
    """
    if bias32 is None and not act and acc.dtype == y1_dst.dtype:
        y1_dst.copy_(acc)  # nothing to compute: the GEMM's rounding is the only one
        if y3_dst is not None:
            y3_dst.copy_(acc)
        return
    rows, n = acc.shape[-2], acc.shape[-1]
    if acc.numel() <= EPILOGUE_CHUNK or acc.dim() < 2:
        return _epilogue(acc, bias32, act, y1_dst, y3_dst)
    step = max(1, EPILOGUE_CHUNK // max(1, n))
    bias_full = None if bias32 is None else bias32.expand_as(acc)
    for lead in itertools.product(*(range(d) for d in acc.shape[:-2])):
        for r0 in range(0, rows, step):
            sl = lead + (slice(r0, r0 + step),)
            _epilogue(acc[sl], None if bias_full is None else bias_full[sl], act, y1_dst[sl],
                      None if y3_dst is None else y3_dst[sl])
            if poll is not None:
                poll()


def _epilogue(acc, bias32, act, y1_dst, y3_dst) -> None:
    acc = acc if acc.dtype == torch.float32 else acc.float()
    if bias32 is not None:
        acc.add_(bias32)
    if y3_dst is not None:
        y3_dst.copy_(acc)
    activations.apply_into(acc, act, y1_dst)
