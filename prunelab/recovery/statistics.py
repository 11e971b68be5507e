"""Per-unit activation statistics for repair: what each repaired layer reads, and what the original gives there.

A *site* is one layer that repair re-solves, with what it is solved toward:

* ``ffn``: the FFN's second layer (fc2 / output_dense), after its fc1 neurons were clustered, pruned or folded (or
  fc2 itself was compressed). It reads the compressed hidden layer ``h`` [K]; the target is the ORIGINAL FFN
  (fc1, activation, fc2) on the same input as the compressed fc1 reads.
* ``ffn-select``: the same FFN when repair also re-chooses which neurons to keep
  (:func:`~prunelab.recovery.solve.select_units`): only the Gram of ALL the original hidden units ``act(fc1(x))``
  [C+1] on the compressed block's input is accumulated (the target is linear in them, so no cross term is needed).
* ``attention-out``: the attention's output projection, after any of q/k/v/out was compressed. It reads the
  compressed heads' context [H*d_v]; the target is the ORIGINAL attention module on the same hidden states.
* ``qk``: the key projection of an attention whose query/key dims were compressed: new key rows for the kept query
  rows (:func:`~prunelab.recovery.solve.resolve_keys`); it needs only the query inputs' second moment.

Hooks on the compressed model's modules accumulate, over the valid positions of each batch only (frames that are
audio, tokens that are text; never padding), ``G = sum x~ x~^T`` and ``C = sum x~ y^T`` in float64 -- never the
activations themselves, so memory does not grow with the number of clips.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

STAGES = ("self_attn-qk", "self_attn-out", "cross_attn-qk", "cross_attn-out", "ffn")
"""The order sites are repaired in within one block (each stage's statistics come from the model repaired so far)."""


@dataclass
class Site:
    """One layer to re-solve.

    Attributes:
        kind: ``"ffn"``, ``"ffn-select"``, ``"attention-out"`` or ``"qk"``.
        part, block: where it is (``"encoder"``/``"decoder"``, block index).
        stage: index into :data:`STAGES`.
        target: the module path re-solved (fc2, out_proj, k_proj).
        reads: the module path whose input gives the target (fc1 for ``ffn``, the attention module for
            ``attention-out``, q_proj for ``qk``).
        heads: attention heads (``qk`` only).
        gram, cross: the accumulated statistics (``cross`` is None for ``qk``).
        frames: positions accumulated.
    """

    kind: str
    part: str
    block: int
    stage: int
    target: str
    reads: str
    heads: int | None = None
    gram: Tensor | None = None
    cross: Tensor | None = None
    frames: int = 0
    _pending: list[Tensor] = field(default_factory=list, repr=False)


def _augment(x: Tensor) -> Tensor:
    """[n, d] -> [n, d+1] float64 with a last column of ones."""
    x = x.to(torch.float64)
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], 1)


def _rows(x: Tensor, mask: Tensor | None) -> Tensor:
    """[B, T, d] activations -> [n, d] rows at the valid positions of ``mask`` [B, T] (all when None)."""
    if mask is None:
        return x.reshape(-1, x.shape[-1])
    if mask.shape != x.shape[:-1]:
        raise RuntimeError(f"position mask {tuple(mask.shape)} does not fit activations {tuple(x.shape)}")
    return x[mask]


def _accumulate(site: Site, x: Tensor, y: Tensor | None) -> None:
    xa = _augment(x)
    g = xa.T @ xa
    site.gram = g if site.gram is None else site.gram + g
    if y is not None:
        c = xa.T @ y.to(torch.float64)
        site.cross = c if site.cross is None else site.cross + c
    site.frames += x.shape[0]


def ffn_activation(block: nn.Module) -> Callable[[Tensor], Tensor]:
    """The activation a block's FFN uses (Whisper's ``activation_fn``, the CTC encoders'
    ``feed_forward.intermediate_act_fn``)."""
    act = getattr(block, "activation_fn", None)
    if act is None:
        ff = getattr(block, "feed_forward", None)
        act = getattr(ff, "intermediate_act_fn", None)
    if act is None:
        raise RuntimeError(f"cannot find the FFN activation of {type(block).__name__}")
    return act


def ffn_target(original_block: nn.Module, fc1: nn.Module, fc2: nn.Module) -> Callable[[Tensor], Tensor]:
    """``x [n, in] -> original fc2(act(fc1(x))) [n, out]``."""
    act = ffn_activation(original_block)
    return lambda x: fc2(act(fc1(x)))


class Collector:
    """Hooks that accumulate the statistics of some sites during forward passes of the compressed model.

    ``mask`` is set by the caller before each batch: [B, T] bool of the valid positions (None: all).
    Use as a context manager; the hooks are removed on exit.
    """

    def __init__(self, sites: list[Site], model: nn.Module, original: nn.Module, blocks_path: dict[str, str]):
        self.sites, self.model, self.original = sites, model, original
        self.blocks_path = blocks_path
        self.mask: Tensor | None = None
        self._handles: list = []

    def __enter__(self) -> "Collector":
        for site in self.sites:
            getattr(self, f"_hook_{site.kind.replace('-', '_')}")(site)
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _pre(self, name: str, fn: Callable, with_kwargs: bool = False) -> None:
        module = self.model.get_submodule(name)
        self._handles.append(module.register_forward_pre_hook(fn, with_kwargs=with_kwargs))

    def _hook_ffn(self, site: Site) -> None:
        block = self.original.get_submodule(f"{self.blocks_path[site.part]}.{site.block}")
        target = ffn_target(block, self.original.get_submodule(site.reads), self.original.get_submodule(site.target))

        def on_fc1(module, args):
            x = _rows(args[0], self.mask)
            with torch.no_grad():
                site._pending.append(target(x))

        def on_fc2(module, args):
            _accumulate(site, _rows(args[0], self.mask), site._pending.pop())

        self._pre(site.reads, on_fc1)
        self._pre(site.target, on_fc2)

    def _hook_ffn_select(self, site: Site) -> None:
        block = self.original.get_submodule(f"{self.blocks_path[site.part]}.{site.block}")
        act, fc1 = ffn_activation(block), self.original.get_submodule(site.reads)

        def on_fc1(module, args):
            with torch.no_grad():
                _accumulate(site, act(fc1(_rows(args[0], self.mask))), None)

        self._pre(site.reads, on_fc1)

    def _hook_attention_out(self, site: Site) -> None:
        original_attention = self.original.get_submodule(site.reads)

        def on_attention(module, args, kwargs):
            with torch.no_grad():
                out = original_attention(*args, **kwargs)
            out = out[0] if isinstance(out, tuple) else out
            site._pending.append(_rows(out, self.mask))

        def on_out(module, args):
            _accumulate(site, _rows(args[0], self.mask), site._pending.pop())

        self._pre(site.reads, on_attention, with_kwargs=True)
        self._pre(site.target, on_out)

    def _hook_qk(self, site: Site) -> None:
        def on_q(module, args):
            _accumulate(site, _rows(args[0], self.mask), None)

        self._pre(site.reads, on_q)
