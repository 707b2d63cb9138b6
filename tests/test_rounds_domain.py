"""What a search update counts as a change in a record the review already had (no database)."""

import pytest

from screening.domain.rounds import (
    RecordText,
    abstract_key,
    earlier_counterpart,
    export_library,
    record_changes,
    source_library,
    wrong_library,
)

from .conftest import SHARED_DATA


def text(key=1, source_id=1, title="Restoring rivers", abstract="We restored 3 rivers.", doi=""):
    return RecordText(key=key, source_id=source_id, title=title, abstract=abstract, doi=doi)


@pytest.mark.parametrize(
    "new,changes",
    [
        (text(title="RESTORING RIVERS."), ()),
        (text(abstract="We restored 3 rivers. © 2019 Elsevier B.V."), ()),
        (text(abstract="We restored 3 rivers. Copyright (C) 2018 The Authors."), ()),
        (text(abstract="We restored 3rivers."), ()),
        (text(doi="https://doi.org/10.1016/ABC"), ("doi",)),
        (text(title="Restoring lakes"), ("title",)),
        (text(abstract=""), ("abstract",)),
        (text(title="Restoring lakes", abstract="We restored 4 lakes."), ("title", "abstract")),
    ],
)
def test_record_changes_ignore_how_libraries_write_the_same_thing(new, changes):
    assert record_changes(new, text()) == changes


def test_same_doi_written_differently_is_no_change():
    assert record_changes(text(doi="10.1016/abc"), text(doi="https://doi.org/10.1016/ABC")) == ()


def test_copyright_word_inside_an_abstract_is_kept():
    abstract = "Copyright law shapes how restoration data are shared across agencies and years."
    assert abstract_key(abstract) == abstract_key(abstract.upper()) != ""
    assert record_changes(text(abstract=abstract), text()) == ("abstract",)


def test_earlier_counterpart_prefers_the_same_source():
    earlier = [text(key=10, source_id=1), text(key=11, source_id=2)]
    assert earlier_counterpart(text(source_id=2), earlier).key == 11
    assert earlier_counterpart(text(source_id=3), earlier).key == 10


EXPORTS = SHARED_DATA / "exports"


@pytest.mark.parametrize(
    "path,library",
    [
        ("litstudy/scopus.csv", "Scopus"),
        ("revtools-restoration/restoration_scopus.ris", "Scopus"),
        ("buhos/scopus.bib", "Scopus"),
        ("litstudy/ieee_1.csv", "IEEE Xplore"),
        ("revtools-restoration/restoration_pubmed.nbib", "PubMed"),
        ("revtools-restoration/restoration_WoS.ciw", "Web of Science"),
        ("litstudy/springer_gpu.csv", "Springer Link"),
        ("irt-learning-review/ScienceDirect.bib", "ScienceDirect"),
        ("bibliometrix/lens_sample.csv", "Lens.org"),
        ("bibliometrix/openalex_sample.csv", "OpenAlex"),
        # A reference manager's file mixes libraries: no library is claimed for it.
        ("asreview-demo-data/baseline_zotero.ris", None),
    ],
)
def test_export_library_from_real_exports(path, library):
    head = (EXPORTS / path).read_text(encoding="utf-8", errors="replace")[:262144]
    assert export_library(head) == library


def test_wrong_library_only_between_two_known_libraries():
    scopus = (EXPORTS / "litstudy/scopus.csv").read_text(encoding="utf-8")
    assert "this is a Scopus export, not IEEE Xplore's" in wrong_library(scopus, "IEEE Xplore")
    assert wrong_library(scopus, "Scopus (Elsevier)") is None
    assert wrong_library(scopus, "Our library's catalogue") is None  # names no known library
    assert source_library("ACM Digital Library") == "ACM Digital Library"
    assert source_library("Web of Science Core Collection") == "Web of Science"
