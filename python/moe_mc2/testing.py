"""What "right" means for a rounded result: shared by the tests and the demo."""
from __future__ import annotations

import torch

# Relative size of one unit in the last place of each output dtype.
ULP = {torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7, torch.float32: 2.0 ** -23}
_FP32_SUM = 2.0 ** -18  # fp32 accumulation-order differences, relative to sum |a||b|


def intermediate_roundings(dtype: torch.dtype, device: torch.device) -> int:
    """Roundings the runtime makes before its epilogue for this dtype and device (numerics.py)."""
    from .runtime.numerics import TileMath

    return TileMath(dtype, device).rounds_before_epilogue


def rounding_ratio(out: torch.Tensor, ref: torch.Tensor, scale: torch.Tensor, *,
                   intermediate: int = 0) -> float:
    """max |out - ref| / allowed for an unrounded float64 `ref` (reference.forward(rounded=False)):
    allowed is one rounding of the output dtype at |ref| (a correct result reaches about 0.5),
    plus fp32 accumulation error and `intermediate` extra roundings at the scale of the sum
    (scale = |a| @ |b| + |bias|, from reference.magnitude). <= 1 means within tolerance."""
    ulp = ULP[out.dtype]
    ref64, scale = ref.double(), scale.double()
    allowed = ulp * ref64.abs() + _FP32_SUM * scale + intermediate * 1.2 * ulp * scale + 1e-30
    return float(((out.double() - ref64).abs() / allowed).max()) if out.numel() else 0.0
