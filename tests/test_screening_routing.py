"""Consensus rules and the seed routing table (pure, no database)."""

import pytest

from screening.domain.routing import (
    EXCLUDE,
    INCLUDE,
    UNCERTAIN,
    Destination,
    RoutingError,
    StageRoutes,
    consensus,
    route,
    routing_check,
    routing_table,
)

SEED = [
    StageRoutes("title", "full_text", "abstract", "excluded"),
    StageRoutes("abstract", "full_text", "full_text", "excluded"),
    StageRoutes("full_text", "included", "excluded", "excluded"),
]
COMBINED = [
    StageRoutes("title_abstract", "full_text", "full_text", "excluded"),
    StageRoutes("full_text", "included", "excluded", "excluded"),
]


@pytest.mark.parametrize(
    "stage,verdict,destination",
    [
        ("title", INCLUDE, Destination(stage_key="full_text")),
        ("title", UNCERTAIN, Destination(stage_key="abstract")),
        ("title", EXCLUDE, Destination(outcome="excluded")),
        ("abstract", INCLUDE, Destination(stage_key="full_text")),
        ("abstract", UNCERTAIN, Destination(stage_key="full_text")),
        ("abstract", EXCLUDE, Destination(outcome="excluded")),
        ("full_text", INCLUDE, Destination(outcome="included")),
        ("full_text", UNCERTAIN, Destination(outcome="excluded")),
        ("full_text", EXCLUDE, Destination(outcome="excluded")),
    ],
)
def test_seed_routing_table(stage, verdict, destination):
    assert routing_table(SEED)[(stage, verdict)] == destination


def test_combined_routing_table():
    table = routing_table(COMBINED)
    assert table[("title_abstract", INCLUDE)] == Destination(stage_key="full_text")
    assert table[("title_abstract", UNCERTAIN)] == Destination(stage_key="full_text")
    assert table[("title_abstract", EXCLUDE)].is_terminal
    assert len(table) == 6


def test_routing_refuses_unknown_stage_and_loops():
    with pytest.raises(RoutingError, match="unknown stage"):
        routing_check([StageRoutes("title", "nowhere", "excluded", "excluded")])
    with pytest.raises(RoutingError, match="loop"):
        routing_check(
            [
                StageRoutes("a", "b", "excluded", "excluded"),
                StageRoutes("b", "included", "a", "excluded"),
            ]
        )
    with pytest.raises(RoutingError):
        route(SEED[0], "maybe")


@pytest.mark.parametrize(
    "verdicts,expected",
    [
        ([INCLUDE, INCLUDE], INCLUDE),
        ([EXCLUDE, EXCLUDE], EXCLUDE),
        ([UNCERTAIN, UNCERTAIN], UNCERTAIN),
        ([INCLUDE, EXCLUDE], None),
        ([INCLUDE, UNCERTAIN], None),
        ([INCLUDE, INCLUDE, EXCLUDE], None),
        ([EXCLUDE], EXCLUDE),
    ],
)
def test_unanimous(verdicts, expected):
    assert consensus(verdicts, "unanimous") == expected


@pytest.mark.parametrize(
    "verdicts,expected",
    [
        ([INCLUDE, EXCLUDE], INCLUDE),
        ([EXCLUDE, UNCERTAIN, EXCLUDE], UNCERTAIN),
        ([UNCERTAIN, INCLUDE], INCLUDE),
        ([EXCLUDE, EXCLUDE], EXCLUDE),
    ],
)
def test_liberal_any_include_forwards(verdicts, expected):
    assert consensus(verdicts, "liberal") == expected


@pytest.mark.parametrize(
    "verdicts,expected",
    [
        ([INCLUDE, INCLUDE, EXCLUDE], INCLUDE),
        ([EXCLUDE, UNCERTAIN, EXCLUDE], EXCLUDE),
        ([INCLUDE, EXCLUDE], None),
        ([INCLUDE, EXCLUDE, UNCERTAIN], None),
        ([INCLUDE, INCLUDE, EXCLUDE, EXCLUDE], None),
        ([UNCERTAIN, UNCERTAIN], UNCERTAIN),
    ],
)
def test_majority_ties_conflict(verdicts, expected):
    assert consensus(verdicts, "majority") == expected


def test_consensus_refuses_bad_input():
    with pytest.raises(RoutingError):
        consensus([], "unanimous")
    with pytest.raises(RoutingError):
        consensus(["yes"], "unanimous")
    with pytest.raises(RoutingError):
        consensus([INCLUDE], "dictator")
