"""Data of the demo review (`manage.py load_demo`), shipped with the package.

- `mlops_seed.json`: the seed review's protocol and every figure it reports (Table 1, the
  criteria, the funnel, Table 5). Not a Django fixture: `demo_review_load` reads it.
- `included_studies.json`: the seed's 30 included studies as its reference list and Table 5
  give them (authors, title, venue, year, DOI, the library the DOI belongs to, QC scores).
- `corpus.py`: the generated records around them and their export files, one library's
  real export format each.
"""

import json
from functools import cache
from importlib import resources
from typing import Any


def _load(name: str) -> Any:
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


@cache
def seed_protocol() -> dict[str, Any]:
    """The seed review's protocol and reported figures (read once; do not mutate)."""
    data: dict[str, Any] = _load("mlops_seed.json")
    return data


@cache
def included_studies() -> list[dict[str, Any]]:
    """The seed's 30 included studies, in Table 5's order (read once; do not mutate)."""
    data: list[dict[str, Any]] = _load("included_studies.json")["studies"]
    return data
