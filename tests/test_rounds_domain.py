"""What a search update counts as a change in a record the review already had (no database)."""

import pytest

from screening.domain.rounds import RecordText, abstract_key, earlier_counterpart, record_changes


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
