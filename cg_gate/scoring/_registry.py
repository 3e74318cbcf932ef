"""The scorer contract, its result type and the registry scorers join by decorator."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

from cg_gate.errors import SuiteError
from cg_gate.items import Item, ScorerSpec


@dataclass(frozen=True)
class Score:
    """A response's score: `value` in [0, 1], or None when it cannot be judged; and why.

    `outcome` is the scorer's own verdict where it has one (the refusal scorer: 'refusal',
    'compliance' or 'uncertain'), so an unscored 'uncertain' can be counted apart from other
    unscored items.
    """

    value: float | None
    reason: str
    outcome: str | None = None

    def __post_init__(self) -> None:
        if self.value is not None:
            if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
                raise TypeError(f"score value must be a number or None, not {self.value!r}")
            if math.isnan(self.value):
                object.__setattr__(self, "value", None)
            elif not 0.0 <= self.value <= 1.0:
                raise ValueError(f"score value {self.value} is outside [0, 1]")
            else:
                object.__setattr__(self, "value", float(self.value))


@runtime_checkable
class Scorer(Protocol):
    """Anything callable as `(item, response) -> Score`."""

    def __call__(self, item: Item, response: str) -> Score: ...


ScorerFactory = Callable[..., Scorer]

SCORERS: dict[str, ScorerFactory] = {}


def scorer(name: str) -> Callable[[ScorerFactory], ScorerFactory]:
    """Register a scorer factory under `name`; its keyword arguments are a ScorerSpec's args.

    The scorer the factory returns gets a `spec` attribute (a `ScorerSpec`) recording the name
    and arguments, so a run can rebuild it.
    """

    def register(factory: ScorerFactory) -> ScorerFactory:
        if name in SCORERS and SCORERS[name] is not factory:
            raise ValueError(f"scorer {name!r} is already registered")
        SCORERS[name] = factory
        factory.scorer_name = name  # type: ignore[attr-defined]
        return factory

    return register


def get_scorer(spec: ScorerSpec | str) -> Scorer:
    """Build the scorer a spec names, with its arguments. Unknown names and bad arguments
    raise `SuiteError` listing what is accepted."""
    if isinstance(spec, str):
        spec = ScorerSpec(name=spec)
    factory = SCORERS.get(spec.name)
    if factory is None:
        raise SuiteError(
            f"unknown scorer {spec.name!r}",
            fix=f"use one of: {', '.join(sorted(SCORERS))}",
        )
    params = inspect.signature(factory).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in spec.args if k not in params and not accepts_any]
    if unknown:
        raise SuiteError(
            f"scorer {spec.name!r} has no argument {unknown[0]!r}",
            fix=f"its arguments are: {', '.join(params) or '(none)'}",
        )
    try:
        built = factory(**spec.args)
    except (TypeError, ValueError) as exc:
        raise SuiteError(f"scorer {spec.name!r}: {exc}", fix=f"its arguments are: {', '.join(params)}") from None
    try:
        built.spec = spec  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return built


def known_scorers() -> list[str]:
    """Names of the registered scorers, sorted."""
    return sorted(SCORERS)
