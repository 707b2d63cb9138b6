"""Consensus rules and stage routing: pure functions over plain values.

A stage's required decisions are turned into one outcome by a consensus rule; the outcome is
routed to another stage key or to a terminal outcome (`included` / `excluded`).
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

INCLUDE = "include"
UNCERTAIN = "uncertain"
EXCLUDE = "exclude"
VERDICTS = (INCLUDE, UNCERTAIN, EXCLUDE)

INCLUDED = "included"
EXCLUDED = "excluded"
TERMINAL = (INCLUDED, EXCLUDED)

UNANIMOUS = "unanimous"
LIBERAL = "liberal"
MAJORITY = "majority"
RULES = (UNANIMOUS, LIBERAL, MAJORITY)


class RoutingError(ValueError):
    """A verdict, rule or route that the stage configuration does not allow."""


@dataclass(frozen=True)
class StageRoutes:
    key: str
    route_include: str
    route_uncertain: str
    route_exclude: str


@dataclass(frozen=True)
class Destination:
    """Where a study goes: another stage (`stage_key`) or a terminal `outcome`."""

    stage_key: str | None = None
    outcome: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.outcome is not None


def consensus(verdicts: Sequence[str], rule: str) -> str | None:
    """The stage verdict the decisions reach under `rule`, or None for a conflict.

    unanimous: all verdicts equal, anything else is a conflict.
    liberal: any include forwards the study; otherwise any uncertain forwards it on the
        uncertain route (the cautious path); only a unanimous exclude excludes. Never a conflict.
    majority: the strictly most frequent verdict; a tie for first place is a conflict.
    """
    if not verdicts:
        raise RoutingError("consensus needs at least one decision")
    unknown = set(verdicts) - set(VERDICTS)
    if unknown:
        raise RoutingError(f"unknown verdict(s): {', '.join(sorted(unknown))}")
    if rule == UNANIMOUS:
        return verdicts[0] if len(set(verdicts)) == 1 else None
    if rule == LIBERAL:
        if INCLUDE in verdicts:
            return INCLUDE
        if UNCERTAIN in verdicts:
            return UNCERTAIN
        return EXCLUDE
    if rule == MAJORITY:
        ranked = Counter(verdicts).most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            return None
        return ranked[0][0]
    raise RoutingError(f"unknown consensus rule: {rule}")


def route(stage: StageRoutes, verdict: str) -> Destination:
    """The destination of a study whose stage outcome is `verdict`."""
    target = {
        INCLUDE: stage.route_include,
        UNCERTAIN: stage.route_uncertain,
        EXCLUDE: stage.route_exclude,
    }.get(verdict)
    if target is None:
        raise RoutingError(f"unknown verdict: {verdict}")
    if target in TERMINAL:
        return Destination(outcome=target)
    return Destination(stage_key=target)


def routing_table(stages: Iterable[StageRoutes]) -> dict[tuple[str, str], Destination]:
    """(stage key, verdict) -> destination for every stage, checked for loops and dead ends."""
    stages = list(stages)
    routing_check(stages)
    return {(s.key, v): route(s, v) for s in stages for v in VERDICTS}


def routing_check(stages: Sequence[StageRoutes]) -> None:
    """Refuse routes to unknown stages and routes that could send a study round in circles."""
    by_key: Mapping[str, StageRoutes] = {s.key: s for s in stages}
    for stage in stages:
        for target in (stage.route_include, stage.route_uncertain, stage.route_exclude):
            if target not in TERMINAL and target not in by_key:
                raise RoutingError(f"stage {stage.key} routes to unknown stage {target}")

    def visit(key: str, path: tuple[str, ...]) -> None:
        if key in path:
            raise RoutingError("stage routes form a loop: " + " -> ".join((*path, key)))
        stage = by_key[key]
        for target in {stage.route_include, stage.route_uncertain, stage.route_exclude}:
            if target not in TERMINAL:
                visit(target, (*path, key))

    for stage in stages:
        visit(stage.key, ())
