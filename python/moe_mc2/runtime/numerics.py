"""How a tile's matmul reaches an fp32 result on each device, and the fused epilogue.

SPEC asks for fp32 accumulation and one rounding to x's dtype. What that costs differs:
- float32 x: an fp32 matmul.
- CUDA float16/bfloat16: bmm with out_dtype=float32 (cuBLAS accumulates in fp32).
- CPU float16: no fast fp16 GEMM exists on CPU (about 1 GFLOP/s measured here), so the tile
  and the weight block are upcast to fp32 (exact products, fp32 sums, one rounding).
- CPU bfloat16: oneDNN's bf16 GEMM accumulates in fp32 but can only write bf16 (about 5x
  faster than fp32 here). Its result is rounded once before the fp32 epilogue, so with a bias
  or an activation y1/y3 may differ from the one-rounding result by one bf16 rounding.
"""
from __future__ import annotations

import torch

from ..contract import activations


class TileMath:
    def __init__(self, dtype: torch.dtype, device: torch.device):
        self.dtype = dtype
        self.upcast = dtype != torch.float32 and (device.type == "cpu" and dtype == torch.float16)
        self.out_dtype_kw = dtype != torch.float32 and device.type == "cuda"

    def weight_block(self, w: torch.Tensor) -> torch.Tensor:
        """The weight slice in the dtype the matmul reads (a copy only when upcasting)."""
        return w.float() if self.upcast else w

    def matmul(self, a: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """out (fp32) = a @ w for batched a (b, m, k) and w prepared by weight_block."""
        if self.upcast:
            return torch.bmm(a.float(), w, out=out)
        if self.dtype == torch.float32:
            return torch.bmm(a, w, out=out)
        if self.out_dtype_kw:
            out.copy_(torch.bmm(a, w, out_dtype=torch.float32))
            return out
        out.copy_(torch.bmm(a, w))
        return out


def epilogue(acc: torch.Tensor, bias32, act: int, dtype: torch.dtype, y1_dst, y3_dst) -> None:
    """acc (+ bias) -> y3, act -> y1, each rounded once into its destination view (in place on acc)."""
    if bias32 is not None:
        acc.add_(bias32)
    if y3_dst is not None:
        y3_dst.copy_(acc)
    y1_dst.copy_(activations.apply(acc, act) if act else acc)
