"""The method registry: one place that knows every per-layer compression method.

A method is one pure function on a layer's tensors plus one registration::

    @dataclass(frozen=True)
    class MyOptions:
        strength: float = 0.5

    @register_method("my-method", label="My method", help="one line for --help and the docs",
                     options=MyOptions, needs_importance=True)
    def my_method(weight, bias, k, *, seed, max_iter, importance, strength):  # -> ChannelGroups
        ...

``compress()``, the command line, the app's dropdown and the docs all read :data:`METHODS`, so a
registered method shows up everywhere. The function receives ``weight`` [C, in], ``bias`` [C] or None,
the cluster count ``k`` (1 <= k <= C), ``seed``, ``max_iter``, ``importance`` [C] when the method
declares ``needs_importance`` (next-layer channel importance, :mod:`prunelab.compression.sensitivity`),
and its options as keyword arguments. It returns a :class:`~prunelab.groups.ChannelGroups`
(``structured=True``) or a :class:`~prunelab.groups.MaskedWeight` (``structured=False``).

A **unit-level** method (``folds=True``) compresses a whole foldable unit at once -- the leader (fc1, v or
q) and the layer it feeds or pairs with -- and returns a :class:`~prunelab.groups.FoldedUnit`. It also gets
``context`` (a :class:`~prunelab.groups.UnitContext`: the partner's weights, the LayerNorm the leader reads,
the heads), so it can choose what to keep from more than the leader's rows and compensate in the partner.
Unit-level methods need ``units="foldable"``.
"""
from __future__ import annotations

import difflib
import operator
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Mapping

from torch import Tensor

from ..errors import PlanError
from ..groups import LayerResult, UnitContext


@dataclass(frozen=True)
class NoOptions:
    """A method without options."""


@dataclass(frozen=True)
class Method:
    """One registered method.

    Attributes:
        name: the id used in configs, plans, the CLI and JSON (``"kmeans"``).
        label: what the app shows (``"k-means clustering (paper)"``).
        help: one line for ``--help`` and the docs.
        fn: the pure per-layer function (see the module doc).
        structured: returns ChannelGroups (foldable, really smaller) rather than a masked weight.
        needs_importance: receives the next-layer importance of each channel.
        options: a frozen dataclass of the method's options, with defaults.
        origin: ``"paper"``, ``"baseline"`` or ``"data-free"`` (a prunelab improvement).
        folds: a unit-level method (gets ``context``, returns a FoldedUnit; see the module doc).
    """

    name: str
    label: str
    help: str
    fn: Callable[..., LayerResult]
    structured: bool = True
    needs_importance: bool = False
    options: type = NoOptions
    origin: str = "data-free"
    folds: bool = False

    def make_options(self, options: Any = None) -> Any:
        """``options`` (None, a dict, or the options dataclass) as this method's options dataclass."""
        if options is None:
            return self.options()
        if isinstance(options, self.options):
            return options
        if not isinstance(options, Mapping):
            raise PlanError(f"Options of method {self.name!r} must be a mapping, got {type(options).__name__}.")
        known = {f.name for f in fields(self.options)}
        unknown = sorted(set(options) - known)
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise PlanError(f"Method {self.name!r} has no option {', '.join(map(repr, unknown))}; its options: {allowed}.")
        return self.options(**{name: self._typed(name, value) for name, value in options.items()})

    def _typed(self, name: str, value: Any) -> Any:
        """An option's value checked against its default's type (a JSON or CLI "yes" is no switch; 3 is a float)."""
        default = next(f.default for f in fields(self.options) if f.name == name)
        kind = type(default)
        ok = (isinstance(value, bool) if kind is bool
              else isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
              else isinstance(value, int) and not isinstance(value, bool) if kind is int
              else isinstance(value, kind))
        if not ok:
            what = {bool: "true or false", int: "a whole number", float: "a number", str: "a text"}.get(kind, kind.__name__)
            raise PlanError(f"Option {name!r} of method {self.name!r} must be {what} (default {default!r}), got {value!r}.")
        return float(value) if kind is float else value

    def apply(self, weight: Tensor, bias: Tensor | None, k: int, *, seed: int = 0, max_iter: int = 100,
              importance: Tensor | None = None, options: Any = None, context: UnitContext | None = None) -> LayerResult:
        """Compress one layer (``weight`` [C, in], ``bias`` [C]) to ``k`` channels (a unit-level method: the
        unit it leads, described by ``context``)."""
        check_k(k, int(weight.shape[0]))
        extra = {"importance": importance} if self.needs_importance else {}
        if self.folds:
            if context is None:
                raise PlanError(f"Method {self.name!r} compresses whole foldable units: use units='foldable'.")
            extra["context"] = context
        return self.fn(weight, bias, k, seed=seed, max_iter=max_iter, **extra, **asdict(self.make_options(options)))


METHODS: dict[str, Method] = {}
"""Every registered method, by name, in registration order (the paper's first, then baselines, then the rest)."""


def register_method(name: str, *, label: str, help: str, structured: bool = True, needs_importance: bool = False,
                    options: type = NoOptions, origin: str = "data-free", folds: bool = False) -> Callable:
    """Decorator: register ``fn`` under ``name`` (see the module doc)."""
    def decorate(fn: Callable[..., LayerResult]) -> Callable[..., LayerResult]:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        METHODS[name] = Method(name, label, help, fn, structured, needs_importance, options, origin, folds)
        return fn
    return decorate


def get_method(name: str) -> Method:
    """The registered method ``name``; :class:`PlanError` naming the choices (and the closest one) otherwise."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(METHODS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PlanError(f"Unknown method {name!r}.{hint} Choose one of: {', '.join(METHODS)}.") from None


def check_k(k: int, channels: int) -> None:
    """Raise :class:`PlanError` unless ``1 <= k <= channels``."""
    try:
        ok = not isinstance(k, bool) and 1 <= operator.index(k) <= channels
    except TypeError:
        ok = False
    if not ok:
        raise PlanError(f"The cluster count must be a whole number between 1 and {channels} (the layer's channels), "
                        f"got {k!r}.")
