"""The registry of named, pure scoring rules.

A rule turns one metric's raw value (visits logged, a coverage ratio, an average rating …) into
points. Rules are looked up by name, and the name — which carries a version suffix — is stored
with every result, so an old result can always be recomputed with the rule it was scored by
(the CTFd pattern): a rule's behaviour never changes once released; a change is a new name
(``target_v2``), and the old one stays registered.

Every rule is a pure function ``(raw, params, ctx) -> Decimal``:

- ``raw``: the metric's value for one advisor (``Decimal``; ``int``, numeric ``str`` and
  ``float`` are converted, a float through its shortest repr). ``None`` means "no data" and
  scores 0; a negative raw value is treated as 0.
- ``params``: the rule's parameters from the rubric (validated, see :func:`validate_params`).
- ``ctx``: a :class:`ScoreContext` — the metric's weight (points at full achievement), its cap
  (the most points it can give; the weight when unset) and, for relative scoring, the best raw
  value among the advisors compared.

The result is never below 0 nor above the cap (or weight), and is quantized to 0.01 with
ROUND_HALF_UP. Arithmetic is ``Decimal`` under a fixed local context, so the same inputs give the
same points on every machine and in every thread, and equal raw values give equal points.

Nothing here needs an application context: validation messages are lazy strings, translated
when they are rendered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from flask_babel import lazy_gettext as _l

CENT = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)
MAX_TIERS = 20


class UnknownRuleError(KeyError):
    """No rule is registered under the name."""

    def __init__(self, name: object):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown scoring rule {self.name!r}; known rules: {', '.join(names())}"


class ParamsError(ValueError):
    """A rule's parameters are invalid; ``fields`` maps each parameter to its message."""

    def __init__(self, fields: Mapping[str, Any]):
        self.fields = dict(fields)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.fields.items()))


def to_decimal(value: Any) -> Decimal:
    """A finite Decimal from a Decimal, int, numeric string or float; ValueError otherwise.

    Booleans are refused (``True`` is an ``int`` in Python, but never a meaningful number here).
    A float goes through its shortest repr, so ``0.1`` becomes ``Decimal("0.1")``.
    """
    if isinstance(value, bool):
        raise ValueError("a number is required, not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    else:
        raise ValueError(f"{value!r} is not a number")
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


@dataclass(frozen=True)
class ScoreContext:
    """What a rule may know beyond the raw value: the metric's weight (points at full
    achievement), its cap (the most points it can give; ``None`` = the weight) and ``best``, the
    best raw value among the advisors compared (for relative rules; ``None`` = unknown).

    ``factor`` multiplies the points after the rule (and the cap) gave them, before rounding:
    when a metric does not apply to an advisor (no data, and the rubric says "not applicable"),
    its weight is spread over the metrics that do in proportion to their weights, i.e. each of
    them counts ``total weight / weight that applies`` times (1: everything applies). The rule
    itself never sees it, so a rule's meaning does not change."""

    weight: Decimal
    cap: Decimal | None = None
    best: Decimal | None = None
    factor: Decimal = ONE

    def __post_init__(self):
        weight = to_decimal(self.weight)
        if weight < 0:
            raise ValueError("weight must not be negative")
        object.__setattr__(self, "weight", weight)
        if self.cap is not None:
            cap = to_decimal(self.cap)
            if cap < 0:
                raise ValueError("cap must not be negative")
            object.__setattr__(self, "cap", cap)
        if self.best is not None:
            object.__setattr__(self, "best", to_decimal(self.best))
        factor = to_decimal(self.factor)
        if factor <= 0:
            raise ValueError("factor must be more than 0")
        object.__setattr__(self, "factor", factor)

    @property
    def ceiling(self) -> Decimal:
        """The most points the metric can give."""
        return self.weight if self.cap is None else self.cap


# --- parameter parsing -------------------------------------------------------------------------


class _Params:
    """Reads a rule's parameters, collecting one message per field (all at once, not just the
    first), and refuses parameters the rule does not know."""

    def __init__(self, params: Any, allowed: Iterable[str]):
        self.errors: dict[str, Any] = {}
        self.out: dict[str, Any] = {}
        self.allowed = tuple(allowed)
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            self.errors["params"] = _l("The parameters must be a set of named values.")
            params = {}
        self.params = params
        for key in params:
            if key not in self.allowed:
                self.errors[str(key)] = _l("Unknown parameter for this rule.")

    def number(
        self,
        key: str,
        *,
        required: bool = False,
        default: Decimal | None = None,
        greater_than: Decimal | None = None,
        at_least: Decimal | None = None,
        at_most: Decimal | None = None,
    ) -> Decimal | None:
        value = self.params.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.errors[key] = _l("Required.")
                return None
            self.out[key] = default
            return default
        try:
            number = to_decimal(value)
        except ValueError:
            self.errors[key] = _l("Enter a number.")
            return None
        if greater_than is not None and number <= greater_than:
            self.errors[key] = _l("Must be greater than %(n)s.", n=greater_than)
        elif at_least is not None and number < at_least:
            self.errors[key] = _l("Must be at least %(n)s.", n=at_least)
        elif at_most is not None and number > at_most:
            self.errors[key] = _l("Must be at most %(n)s.", n=at_most)
        else:
            self.out[key] = number
            return number
        return None

    def done(self) -> dict[str, Any]:
        if self.errors:
            raise ParamsError(self.errors)
        return self.out


def _floor_below_target(p: _Params, target: Decimal | None, floor: Decimal | None) -> None:
    if target is not None and floor is not None and floor >= target:
        p.errors["floor"] = _l("The floor must be below the target.")


def _parse_target(params: Any) -> dict:
    p = _Params(params, ("target", "floor"))
    target = p.number("target", required=True, greater_than=ZERO)
    floor = p.number("floor", default=ZERO, at_least=ZERO)
    _floor_below_target(p, target, floor)
    return p.done()


def _parse_ratio_target(params: Any) -> dict:
    p = _Params(params, ("target", "floor"))
    target = p.number("target", required=True, greater_than=ZERO, at_most=ONE)
    floor = p.number("floor", default=ZERO, at_least=ZERO, at_most=ONE)
    _floor_below_target(p, target, floor)
    return p.done()


def _parse_tiers(params: Any) -> dict:
    p = _Params(params, ("tiers",))
    tiers = p.params.get("tiers")
    if tiers is None:
        p.errors["tiers"] = _l("Required.")
        return p.done()
    if isinstance(tiers, str | bytes | Mapping) or not isinstance(tiers, Iterable):
        p.errors["tiers"] = _l("Enter a list of (threshold, points) tiers.")
        return p.done()
    tiers = list(tiers)
    if not tiers:
        p.errors["tiers"] = _l("Add at least one tier.")
    elif len(tiers) > MAX_TIERS:
        p.errors["tiers"] = _l("At most %(n)s tiers.", n=MAX_TIERS)
    parsed: list[tuple[Decimal, Decimal]] = []
    for n, tier in enumerate(tiers, start=1):
        if "tiers" in p.errors:
            break
        if isinstance(tier, Mapping):
            pair = (tier.get("threshold"), tier.get("points"))
        elif isinstance(tier, list | tuple) and len(tier) == 2:
            pair = (tier[0], tier[1])
        else:
            p.errors["tiers"] = _l("Tier %(n)s: give a threshold and the points.", n=n)
            break
        try:
            threshold, points = to_decimal(pair[0]), to_decimal(pair[1])
        except ValueError:
            p.errors["tiers"] = _l("Tier %(n)s: the threshold and points must be numbers.", n=n)
            break
        if threshold < 0 or points < 0:
            p.errors["tiers"] = _l(
                "Tier %(n)s: the threshold and points must not be negative.", n=n
            )
        elif parsed and threshold <= parsed[-1][0]:
            p.errors["tiers"] = _l("Tier %(n)s: thresholds must increase from tier to tier.", n=n)
        elif parsed and points < parsed[-1][1]:
            p.errors["tiers"] = _l("Tier %(n)s: a higher tier must not give fewer points.", n=n)
        else:
            parsed.append((threshold, points))
    p.out["tiers"] = tuple(parsed)
    return p.done()


def _parse_nothing(params: Any) -> dict:
    return _Params(params, ()).done()


def _scale_nothing(params: Mapping, factor: int) -> dict:
    return dict(params)


def _scale_target(params: Mapping, factor: int) -> dict:
    return {k: (v * factor if v is not None else None) for k, v in params.items()}


def _scale_tiers(params: Mapping, factor: int) -> dict:
    return {"tiers": tuple((threshold * factor, points) for threshold, points in params["tiers"])}


# --- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A registered rule. Calling it scores: params are validated (``ParamsError``), the raw
    value normalised, the result clamped to [0, ceiling] and quantized to 0.01 half-up."""

    name: str
    label: Any  # lazy string
    compute: Callable[[Decimal, Mapping, ScoreContext], Decimal]
    parse: Callable[[Any], dict]
    scale_params: Callable[[Mapping, int], dict]
    description: str = ""

    def __call__(self, raw: Any, params: Mapping | None, ctx: ScoreContext) -> Decimal:
        return self.score_many((raw,), params, ctx)[0]

    def score_many(
        self, raws: Iterable[Any], params: Mapping | None, ctx: ScoreContext
    ) -> list[Decimal]:
        """Each raw value's points on one metric (as calling the rule on each): the parameters
        validated once and the decimal context set once, for scoring many advisors."""
        parsed = self.parse(params)
        compute, ceiling, factor = self.compute, ctx.ceiling, ctx.factor
        out = []
        with localcontext() as dc:
            dc.prec = 28
            dc.rounding = ROUND_HALF_EVEN
            for raw in raws:
                value = normalize_raw(raw)
                points = compute(value, parsed, ctx) if value is not None else ZERO
                points = min(max(points, ZERO), ceiling)
                if factor != ONE:
                    points *= factor
                out.append(points.quantize(CENT, rounding=ROUND_HALF_UP))
        return out

    def scale(self, params: Mapping, factor: int) -> dict:
        """The parameters for a period ``factor`` months long, from the monthly ones (only
        values measured in raw units scale; points and ratios never do)."""
        return self.scale_params(self.parse(params), factor)


_REGISTRY: dict[str, Rule] = {}


def register(
    name: str,
    *,
    label: Any = None,
    parse: Callable[[Any], dict] = _parse_nothing,
    scale: Callable[[Mapping, int], dict] = _scale_nothing,
):
    """Register a scoring function under ``name`` (a decorator). The name must be new: a
    released rule never changes meaning; register a new version instead."""

    def decorator(func: Callable[[Decimal, Mapping, ScoreContext], Decimal]) -> Rule:
        if name in _REGISTRY:
            raise ValueError(f"scoring rule {name!r} is already registered")
        rule = Rule(
            name=name,
            label=label if label is not None else name,
            compute=func,
            parse=parse,
            scale_params=scale,
            description=(func.__doc__ or "").strip(),
        )
        _REGISTRY[name] = rule
        return rule

    return decorator


def get(name: str) -> Rule:
    """The rule registered as ``name``; ``UnknownRuleError`` (a ``KeyError``) otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownRuleError(name) from None


def names() -> list[str]:
    """Every registered rule name, sorted."""
    return sorted(_REGISTRY)


def validate_params(name: str, params: Any) -> dict[str, Any]:
    """Field -> message for everything wrong with ``params`` for rule ``name`` ({} when they are
    valid). An unknown rule is reported under ``rule``."""
    if name not in _REGISTRY:
        return {"rule": _l("Unknown scoring rule.")}
    try:
        _REGISTRY[name].parse(params)
    except ParamsError as exc:
        return exc.fields
    return {}


def normalize_raw(raw: Any) -> Decimal | None:
    """``None`` stays ``None`` (no data); negative values become 0."""
    if raw is None:
        return None
    value = to_decimal(raw)
    return value if value > 0 else ZERO


def _linear(raw: Decimal, floor: Decimal, target: Decimal, weight: Decimal) -> Decimal:
    if raw <= floor:
        return ZERO
    if raw >= target:
        return weight
    return weight * (raw - floor) / (target - floor)


@register(
    "target_v1",
    label=_l("Against a target"),
    parse=_parse_target,
    scale=_scale_target,
)
def target_v1(raw: Decimal, params: Mapping, ctx: ScoreContext) -> Decimal:
    """Full points at or over ``target``; nothing at or below ``floor`` (default 0); linear in
    between. For counts and amounts (which scale with the period) and averages."""
    return _linear(raw, params["floor"], params["target"], ctx.weight)


@register(
    "ratio_target_v1",
    label=_l("Ratio against a target"),
    parse=_parse_ratio_target,
)
def ratio_target_v1(raw: Decimal, params: Mapping, ctx: ScoreContext) -> Decimal:
    """For a share between 0 and 1 (coverage, on-time rate): like ``target_v1`` with the target
    and floor as shares (0 < target <= 1), a raw value above 1 read as 1. Never scales with the
    period: a share is the same over a month or a year."""
    return _linear(min(raw, ONE), params["floor"], params["target"], ctx.weight)


@register(
    "tiers_v1",
    label=_l("Tiers"),
    parse=_parse_tiers,
    scale=_scale_tiers,
)
def tiers_v1(raw: Decimal, params: Mapping, ctx: ScoreContext) -> Decimal:
    """The points of the highest tier whose threshold the raw value reaches (raw >= threshold);
    0 below the first tier. ``tiers`` is a list of (threshold, points), thresholds increasing."""
    points = ZERO
    for threshold, tier_points in params["tiers"]:
        if raw >= threshold:
            points = tier_points
        else:
            break
    return points


@register("relative_best_v1", label=_l("Relative to the best"))
def relative_best_v1(raw: Decimal, params: Mapping, ctx: ScoreContext) -> Decimal:
    """raw / best x weight, where best is the highest raw value among the advisors compared: the
    best gets full points. When the best is 0 (or unknown) everybody gets 0."""
    best = ctx.best
    if best is None or best <= 0:
        return ZERO
    return ctx.weight * raw / best


# --- ranks -------------------------------------------------------------------------------------


def competition_ranks(scores: Iterable[tuple[Hashable, Any]]) -> dict[Hashable, int]:
    """Standard competition ranking ("1224"), highest score first: equal scores share a rank and
    the next rank skips as many places (the SQL ``RANK() OVER (ORDER BY score DESC)``). Ties keep
    the input order in the returned dict, so the result is deterministic."""
    items = [(key, to_decimal(score)) for key, score in scores]
    if len({key for key, _ in items}) != len(items):
        raise ValueError("duplicate keys in the scores")
    order = sorted(range(len(items)), key=lambda i: (-items[i][1], i))
    ranks: dict[Hashable, int] = {}
    previous: Decimal | None = None
    rank = 0
    for position, i in enumerate(order, start=1):
        key, score = items[i]
        if previous is None or score != previous:
            rank = position
            previous = score
        ranks[key] = rank
    return ranks
