"""The false merges found on real data (issue 14), each with the records quoted from it.

An automatic false merge silently removes a study from the review: these pairs must never be
merged automatically, whatever their titles' similarity. Pure domain, no database.
"""

from dataclasses import replace

import pytest

from screening.domain.dedup import DedupRecord, deduplicate
from screening.domain.normalise import fold, title_key

MISQ_TITLE = "Remarks from MIS Quarterly Editor - Editor's Comments"
LNCS = (
    "Lecture Notes in Computer Science (including subseries Lecture Notes in Artificial "
    "Intelligence and Lecture Notes in Bioinformatics)"
)
ICCSA_TITLE = (
    "10th International Conference on Computational Science and Its Applications, ICCSA 2010"
)


def merged(result, a, b):
    return any(a in c and b in c for c in result.clusters)


def queued(result, a, b):
    return any({p.a, p.b} == {a, b} for p in result.candidates)


def misq(key, volume, issue, year, **fields):
    return DedupRecord(
        key=key,
        title=MISQ_TITLE,
        authors=("Lee, A. S.",),
        year=year,
        venue="MIS Quarterly",
        volume=volume,
        issue=issue,
        **fields,
    )


MISQ_ISSUES = [
    misq("24(1)", "24", "1", 2000),
    misq("24(2)", "24", "2", 2000),
    misq("24(3)", "24", "3", 2000),
    misq("24(4)", "24", "4", 2000),
    misq("25(1)", "25", "1", 2001),
    misq("25(2)", "25", "2", 2001),
]


def test_editors_comments_of_six_issues_stay_six_studies_and_fill_no_queue():
    result = deduplicate(MISQ_ISSUES)
    assert sorted(len(c) for c in result.clusters) == [1] * 6
    assert result.candidates == []


def test_editors_comments_of_one_issue_exported_twice_merge():
    result = deduplicate(
        [*MISQ_ISSUES, misq("24(3) again", "24", "3", 2000, pages="ix-xi")],
    )
    assert merged(result, "24(3)", "24(3) again")
    assert sum(len(c) for c in result.clusters if len(c) > 1) == 2


def test_editors_comments_without_issue_do_not_chain_two_issues_together():
    """A copy without its issue number looks like each of them: it may join one, never two."""
    bare = misq("no issue", "24", "", 2000)
    result = deduplicate([MISQ_ISSUES[0], MISQ_ISSUES[1], bare])
    assert not merged(result, "24(1)", "24(2)")


def test_same_paper_title_in_two_issues_of_one_volume_is_never_merged():
    title = "Information technology and the structuring of organizations: a field study"
    a = DedupRecord(
        key="a",
        title=title,
        authors=("Barley, S.",),
        year=2000,
        venue="MIS Quarterly",
        volume="24",
        issue="1",
    )
    b = DedupRecord(
        key="b",
        title=title,
        authors=("Barley, S.",),
        year=2000,
        venue="MIS Q.",
        volume="24",
        issue="2",
    )
    result = deduplicate([a, b])
    assert not merged(result, "a", "b")
    assert "different issue" in result.candidates[0].reason


def test_non_overlapping_pages_in_one_venue_are_two_papers_even_by_one_author_in_one_year():
    title = "Remarks on the design of information systems research programmes"
    a = DedupRecord(
        key="a",
        title=title,
        authors=("Lee, A. S.",),
        year=2000,
        venue="MIS Quarterly",
        volume="24",
        pages="iii-vii",
    )
    b = DedupRecord(
        key="b",
        title=title,
        authors=("Lee, A. S.",),
        year=2000,
        venue="MIS Quarterly",
        volume="24",
        pages="v-x",
    )
    c = DedupRecord(
        key="c",
        title=title,
        authors=("Lee, A. S.",),
        year=2000,
        venue="MIS Quarterly",
        volume="24",
        pages="11-20",
    )
    d = DedupRecord(
        key="d",
        title=title,
        authors=("Lee, A. S.",),
        year=2000,
        venue="MIS Quarterly",
        volume="24",
        pages="31-40",
    )
    result = deduplicate([c, d])
    assert not merged(result, "c", "d")
    # Overlapping ranges ("iii-vii" and "v-x" share pages) are not evidence of two papers.
    assert not any("different pages" in p.reason for p in deduplicate([a, b]).merges)


def iccsa(volume, **fields):
    fields.setdefault("venue", LNCS)
    return DedupRecord(
        key=volume,
        title=ICCSA_TITLE,
        year=2010,
        volume=f"{volume} LNCS",
        publication_type="Conference Review",
        **fields,
    )


def test_scopus_conference_reviews_of_four_lncs_volumes_stay_four():
    records = [iccsa("6016"), iccsa("6017"), iccsa("6018"), iccsa("6019")]
    result = deduplicate(records)
    assert sorted(len(c) for c in result.clusters) == [1, 1, 1, 1]
    assert result.candidates == []


def test_conference_review_volumes_differ_even_when_one_record_lacks_the_series():
    result = deduplicate([iccsa("6016"), iccsa("6017", venue="")])
    assert not merged(result, "6016", "6017")


def test_conference_review_of_one_volume_from_two_exports_merges():
    result = deduplicate([iccsa("6016"), replace(iccsa("6016"), key="x")])
    assert merged(result, "6016", "x")


def test_same_title_at_two_conferences_in_two_years_goes_to_a_human():
    icis = DedupRecord(
        key="icis",
        title="Home Bias in Online Employment",
        authors=("Gefen, D.", "Carmel, E."),
        year=2017,
        venue="ICIS 2017 Proceedings",
        publication_type="inproceedings",
    )
    hicss = DedupRecord(
        key="hicss",
        title="Home Bias in Online Employment",
        authors=("Gefen, D.", "Carmel, E."),
        year=2018,
        venue="Proceedings of the 51st Hawaii International Conference on System Sciences",
        doi="10.24251/HICSS.2018.547",
        publication_type="inproceedings",
    )
    result = deduplicate([icis, hicss])
    assert not merged(result, "icis", "hicss")
    assert queued(result, "icis", "hicss")
    assert "different venues and years" in result.candidates[0].reason


@pytest.mark.parametrize(
    "title,other",
    [
        (
            "Глубокое обучение для систематических обзоров литературы",
            "Машинное обучение в медицинской диагностике опухолей",
        ),
        (
            "Βαθιά μάθηση για συστηματικές ανασκοπήσεις της βιβλιογραφίας",
            "Μηχανική μάθηση στην ιατρική διάγνωση όγκων",
        ),
        ("深度学习在系统文献综述中的应用研究", "机器学习在医学肿瘤诊断中的方法"),
        ("ディープラーニングによる系統的文献レビューの自動化", "機械学習による腫瘍の医療診断"),
    ],
)
def test_titles_in_other_scripts_merge_when_identical_and_stay_apart_when_different(title, other):
    assert title_key(title) and title_key(other) and title_key(title) != title_key(other)
    records = [
        DedupRecord(key="a", title=title, authors=("Иванов, И.",), year=2020, venue="J"),
        DedupRecord(key="b", title=title, authors=("Иванов, И.",), year=2020, venue="J"),
        DedupRecord(key="c", title=other, authors=("Иванов, И.",), year=2020, venue="J"),
    ]
    result = deduplicate(records)
    assert merged(result, "a", "b")
    assert not merged(result, "a", "c")
    assert not queued(result, "a", "c")


def test_folding_gives_every_script_a_key_and_reads_latex_and_compatibility_forms():
    assert fold("Глубокое обучение") == "glubokoe obuchenie"
    assert fold("Βαθιά μάθηση") == "vathia mathisi"
    assert fold("深度学习") == "shen du xue xi"
    assert fold(r"{\"U}ber {B}ayesian \emph{ﬁlters}") == "uber bayesian filters"
    assert fold("50% of ＵＳ trials &amp; more") == "50 of us trials more"


def test_medline_translated_title_joins_its_original_at_the_same_place_in_the_journal():
    """MEDLINE brackets its English translation of a title; another library translates it
    otherwise. One year, volume and first page in one journal is one article."""
    medline = DedupRecord(
        key="medline",
        title="[Postoperative immunostimulation in non-small-cell bronchial carcinoma]",
        year=1984,
        venue="Deutsche medizinische Wochenschrift (1946)",
        volume="109",
        pages="935-940",
    )
    embase = DedupRecord(
        key="embase",
        title="Postoperative local immunostimulation in non-oatcell bronchial carcinoma",
        year=1984,
        venue="Dtsch-Med-Wochenschr",
        volume="109",
        pages="935-940",
    )
    elsewhere = replace(embase, key="elsewhere", pages="1012-1019")
    result = deduplicate([medline, embase, elsewhere])
    assert merged(result, "medline", "embase")
    assert not merged(result, "medline", "elsewhere")
