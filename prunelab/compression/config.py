"""What to compress and how: :class:`CompressionConfig`, and the ``recommended`` setting it can name.

A config names a registered method (:mod:`prunelab.methods`) and either a plan (per-layer K) or a
sparsity with a preset (which layers) and an allocation (how the sparsity is spread over them).

A config is a value, checked once, when it is made: every field that can be judged without a model (method,
options, preset, units, allocation, sparsity, seed, vocabulary). What needs the model (does the plan fit its
layers, does the preset select any) is checked once by :func:`prunelab.compression.compress.check_fits`; turning
the config into a plan is :func:`prunelab.compression.resolve.resolve_plan`'s job, not the config's.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

from ..errors import PlanError
from ..methods import METHODS, get_method, method_names
from .plan import Plan, check_preset, check_sparsity, check_units
from .vocabulary import check_script

RECOMMENDED = {"method": "predictive", "allocate": "auto", "preset": "encoder-fc1", "units": "foldable"}
"""The setting chosen on the tune clips by the fixed rules of ``benchmarks/fidelity_study.py`` (round 1: the
method with the lowest mean tune WER over 10/20/30 % of the encoder FFN neurons; round 4: the per-layer "auto"
allocation, mean tune WER 49.3 vs 62.3 uniform; see ``benchmarks/WER_STUDY.md`` for the test-set WER):
method, layer allocation, the layers it was measured on, and what its K counts. ``"recommended"`` resolves to
it; preset, allocation and units apply where the caller gives none."""

ALLOCATIONS = ("uniform", "auto", "output")
"""``uniform``: the same sparsity on every selected layer; ``auto``: K per layer from data-free sensitivity curves;
``output``: K per unit group from the model's output on stand-in inputs. Each is one strategy of
:data:`prunelab.compression.resolve.STRATEGIES`."""


def method_choices() -> list[str]:
    """What a user may name as a method: every registered method, then ``recommended``."""
    return method_names() + ["recommended"]


def resolve_units(name: str, units: str | None = None) -> str:
    """The units a method name compresses: ``units`` when given, else the recommended setting's for
    ``"recommended"``, else ``"channels"``."""
    if units is not None:
        return units
    return RECOMMENDED["units"] if name == "recommended" else "channels"


def resolve_method(name: str, allocate: str | None = None) -> tuple[str, str]:
    """``(method, allocation)`` for a method name; ``"recommended"`` -> :data:`RECOMMENDED` (an explicit
    ``allocate`` overrides the recommended allocation). Other names pass through (default allocation uniform)."""
    if name == "recommended":
        return RECOMMENDED["method"], allocate or RECOMMENDED["allocate"]
    return name, allocate or "uniform"


def resolve_recommended(setting: dict, sparsity: float, allocate: str | None = None,
                        units: str | None = None) -> tuple[str, str, str, float]:
    """What ``recommended`` stands for under another setting than :data:`RECOMMENDED` (``prunelab eval`` and
    ``compress`` with ``--calibration`` pass the repaired one): ``(method, allocation, units, sparsity)``, an explicit
    ``allocate`` / ``units`` overriding the setting's, the sparsity times the setting's ``scale`` (default 1;
    rounded to 6 places)."""
    return (setting["method"], allocate or setting["allocate"], units or setting["units"],
            round(float(sparsity) * setting.get("scale", 1.0), 6))


@dataclass
class CompressionConfig:
    """What to compress and how.

    Give either ``plan`` (per-layer K) or ``sparsity`` (+ ``preset``, which layers it applies to); the sparsity is
    checked (a number in [0, 1)) when no plan is given, and ignored when one is.
    ``fold=True`` folds clustered FFN pairs into genuinely smaller dense layers.
    ``allocate``: ``"uniform"`` (the same sparsity on every selected layer) or ``"auto"`` (K per layer from
    data-free sensitivity curves of each layer's weights, :func:`prunelab.compression.allocate.allocate`) or
    ``"output"`` (K per unit group from how much compressing it alone changes the model's output on stand-in
    inputs with no speech in them, :mod:`prunelab.compression.output_allocation`); ignored when a plan is given.
    ``method="recommended"`` resolves to :data:`RECOMMENDED` (method and, unless ``allocate`` is set,
    allocation). ``options``: the method's options (a dict or its options dataclass, see
    :attr:`prunelab.methods.Method.options`), checked when the config is made. ``units``: ``"channels"``
    (the paper: output channels of each named layer) or ``"foldable"`` (FFN neurons, attention value dims and
    query/key dims per head, each folded into the layer that reads it; see :data:`prunelab.compression.plan.UNITS`).
    ``vocabulary``: ``None`` keeps every token; ``"latin"`` or ``"ascii"`` keeps only the decoder tokens of those
    scripts (Whisper only; :mod:`prunelab.compression.vocabulary`), independently of the plan.
    """

    method: str = "kmeans"
    sparsity: float | None = None
    preset: str | None = None  # None: "uniform", or where the recommended setting was measured for "recommended"
    plan: Plan | None = None
    seed: int = 0
    max_iter: int = 100
    fold: bool = True
    options: Any = field(default_factory=dict)
    allocate: str | None = None
    units: str | None = None  # None: "channels", or the recommended setting's units for "recommended"
    vocabulary: str | None = None  # None: every token; "latin" / "ascii": see prunelab.compression.vocabulary

    def __post_init__(self) -> None:
        if self.preset is None:
            self.preset = RECOMMENDED["preset"] if self.method == "recommended" else "uniform"
        self.units = resolve_units(self.method, self.units)
        self.method, self.allocate = resolve_method(self.method, self.allocate)
        if self.method not in METHODS:
            get_method(self.method)  # raises a PlanError that names the choices
        if self.allocate not in ALLOCATIONS:
            raise PlanError(f"Unknown allocation {self.allocate!r}; choose one of: {', '.join(ALLOCATIONS)}.")
        if not isinstance(self.fold, bool):
            raise PlanError(f"fold must be True or False, got {self.fold!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise PlanError(f"The seed must be a whole number >= 0, got {self.seed!r}.")
        self.seed = int(self.seed)
        check_preset(self.preset)
        check_units(self.units)
        check_script(self.vocabulary)
        if self.plan is None and self.sparsity is not None:
            check_sparsity(self.sparsity)
        self.options = get_method(self.method).make_options(self.options)
