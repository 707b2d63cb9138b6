"""The ranking area keeps the layer rules of docs/architecture.md: its selectors never import
services, its services reach the Celery task only by name (through services/queue.py), and its
forms live in screening/forms/, not in the view module."""

import ast
from pathlib import Path

import screening

PACKAGE = Path(screening.__file__).parent


def _imported_modules(relative: str) -> set[str]:
    tree = ast.parse((PACKAGE / relative).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_ranking_selectors_import_no_service():
    imported = _imported_modules("selectors/ranking.py")
    assert not [name for name in imported if "services" in name]


def test_ranking_services_import_no_task_module():
    imported = _imported_modules("services/ranking.py")
    assert not [name for name in imported if "tasks" in name]
    assert ".queue" in imported


def test_ranking_view_module_defines_no_form():
    tree = ast.parse((PACKAGE / "views/ranking.py").read_text())
    classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    assert not [name for name in classes if name.endswith("Form")]
