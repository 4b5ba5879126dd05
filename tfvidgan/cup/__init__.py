"""Compressed ultrafast photography (CUP): forward operator, noise, and the GAP-TV baseline."""

from tfvidgan.cup.gap_tv import gap_tv_reconstruct, tv_denoise
from tfvidgan.cup.operator import CupOperator, add_noise, make_mask

__all__ = ["CupOperator", "add_noise", "make_mask", "gap_tv_reconstruct", "tv_denoise"]
