"""`manage.py simulate` on a small slice of a shared ASReview dataset (kept fast)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from .conftest import SHARED_DATA

DATASET = SHARED_DATA / "screening/asreview-systematic-review-datasets/Nagtegaal_2019.csv"
KEYS = {"wss@95", "wss@100", "recall@10%", "recall@25%", "rrf@10", "seconds"}


def simulate(*args):
    out = StringIO()
    call_command("simulate", *args, stdout=out)
    return json.loads(out.getvalue())


def test_simulate_prints_the_contract_json():
    report = simulate("--dataset", str(DATASET), "--seeds", "2", "--limit", "200")
    assert report["dataset"] == "Nagtegaal_2019"
    assert (report["records"], report["relevant"]) == (200, 13)
    assert report["model"] == "svm"
    assert report["retraining"] == "after every 1 screened record"
    assert [s["seed"] for s in report["seeds"]] == [1, 2]
    for entry in report["seeds"]:
        assert KEYS <= set(entry)
        assert -1 < entry["wss@95"] <= 0.95 and entry["wss@100"] <= 1
        assert 0 <= entry["recall@10%"] <= entry["recall@25%"] <= 1
        assert entry["rrf@10"] == entry["recall@10%"]
    assert set(report["median"]) == KEYS
    # Active learning beats reading in random order, whose expected WSS is 0.
    assert report["median"]["wss@95"] > 0.2
    # Same seeds, same orders.
    again = simulate("--dataset", str(DATASET), "--seeds", "1", "--limit", "200")
    assert again["seeds"][0]["wss@95"] == report["seeds"][0]["wss@95"]


def test_simulate_in_batches_states_it():
    report = simulate(
        "--dataset", str(DATASET), "--seeds", "1", "--limit", "120", "--batch-size", "10"
    )
    assert report["retraining"] == "after every 10 screened records"
    assert report["seeds"][0]["trainings"] < 20


@pytest.mark.parametrize(
    "args,message",
    [
        (["--dataset", "/nonexistent.csv"], "No such file"),
        (["--dataset", str(DATASET), "--label-column", "nope", "--limit", "50"], "label"),
        (["--dataset", str(DATASET), "--seeds", "0"], "--seeds"),
    ],
)
def test_simulate_refuses_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate", *args, stdout=StringIO())


@pytest.mark.parametrize("rule", ["buscar", "heuristic"])
def test_simulate_reports_where_a_stopping_rule_stops(rule):
    report = simulate(
        "--dataset", str(DATASET), "--seeds", "1", "--limit", "200", "--batch-size", "10",
        "--stopping", rule, "--target", "0.9", "--confidence", "0.8", "--streak", "40",
    )  # fmt: skip
    stop = report["seeds"][0]["stop"]
    assert {"rule", "target", "confidence", "screened", "screened_fraction", "recall"} <= set(stop)
    assert stop["rule"] == rule
    assert 0 < stop["screened"] <= 200
    assert stop["screened_fraction"] == round(stop["screened"] / 200, 4)
    assert 0 < stop["recall"] <= 1
    if rule == "buscar":
        assert (stop["target"], stop["confidence"]) == (0.9, 0.8)
    else:
        assert stop["streak"] == 40


def test_simulate_without_stopping_reports_no_stop():
    report = simulate("--dataset", str(DATASET), "--seeds", "1", "--limit", "120")
    assert "stop" not in report["seeds"][0]


@pytest.mark.parametrize("option", [["--target", "1.5"], ["--confidence", "0"]])
def test_simulate_refuses_bad_stopping_parameters(option):
    with pytest.raises(CommandError, match="between 0 and 1"):
        call_command(
            "simulate", "--dataset", str(DATASET), "--seeds", "1", "--limit", "60",
            "--stopping", "buscar", *option, stdout=StringIO(),
        )  # fmt: skip
