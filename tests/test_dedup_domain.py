"""Duplicate detection, pure domain: every identifier trap named in the issue, no database."""

import pytest

from screening.domain.dedup import (
    _PAIR_SHIFT,
    DedupRecord,
    _Feat,
    _packed_pairs,
    _title_features,
    _without,
    candidate_pairs,
    deduplicate,
    most_complete,
    notice_kind,
    records_to_compare,
    strip_notes,
    title_similarity,
    titles_near,
)
from screening.domain.normalise import (
    normalise_doi,
    page_key,
    surname,
    title_key,
    venue_tokens,
    venues_compatible,
)

from .test_dedup_benchmarks import BENCH, read_set

TITLE = "Eculizumab in atypical haemolytic uraemic syndrome: a prospective multicentre trial"


def rec(key, **fields):
    fields.setdefault("title", TITLE)
    fields.setdefault("year", 2012)
    fields.setdefault("authors", ("Legendre, C. M.", "Licht, C."))
    return DedupRecord(key=key, **fields)


def clusters_of(result):
    return sorted(sorted(c) for c in result.clusters)


def merged(result, a, b):
    return any(a in c and b in c for c in result.clusters)


def queued(result, a, b):
    return any({p.a, p.b} == {a, b} for p in result.candidates)


def test_same_doi_merges_with_reason_whatever_the_spelling():
    result = deduplicate(
        [
            rec(1, doi="https://doi.org/10.1056/NEJMoa1208981", year=None),
            rec(2, doi="doi:10.1056/nejmoa1208981.", title=TITLE.upper(), authors=()),
        ]
    )
    assert clusters_of(result) == [[1, 2]]
    assert "same DOI" in result.merges[0].reason


def test_same_pmid_merges():
    result = deduplicate([rec(1, pmid="23738544", authors=()), rec(2, pmid="PMID: 23738544")])
    assert merged(result, 1, 2)
    assert "same PMID" in result.merges[0].reason


def test_title_typo_same_year_same_first_author_merges_with_a_readable_reason():
    typo = TITLE.replace("prospective", "prospectve")
    result = deduplicate([rec(1), rec(2, title=typo, authors=("Legendre C",))])
    assert merged(result, 1, 2)
    reason = result.merges[0].reason
    assert (
        reason.startswith("title 0.9") and "same year" in reason and "same first author" in reason
    )


def test_missing_year_is_neutral_not_a_disagreement():
    result = deduplicate([rec(1, year=None, pages="1-9"), rec(2, pages="1-9")])
    assert merged(result, 1, 2)


def test_generic_titles_do_not_merge_on_title_and_year():
    records = [
        rec(1, title="Editorial", authors=("Smith, J.",), venue="Stroke"),
        rec(2, title="Editorial.", authors=("Jones, K.",), venue="Stroke"),
        rec(3, title="Reply", authors=("Smith, J.",), venue="Lancet"),
        rec(4, title="Reply", authors=("Smith, J.",), venue="Lancet"),
    ]
    result = deduplicate(records)
    assert all(len(c) == 1 for c in result.clusters)


def test_generic_title_merges_only_with_full_locator_evidence():
    same = dict(title="Editorial", authors=("Smith, J.",), venue="Stroke", volume="40", pages="1-2")
    result = deduplicate([rec(1, **same), rec(2, **same)])
    assert merged(result, 1, 2)


def test_conference_supplement_sharing_one_doi_is_not_one_paper():
    doi = "10.1111/j.1365-2141.2009.07601.x"
    titles = [
        "Eculizumab dose modification for breakthrough haemolysis in PNH",
        "Thrombotic microangiopathy after stem cell transplantation in children",
        "Iron chelation adherence in thalassaemia major: a registry study",
        "Outcome of immune thrombocytopenia in pregnancy: a cohort",
    ]
    records = [
        rec(i, title=t, doi=doi, authors=(f"Author{i}, A.",), venue="Br J Haematol")
        for i, t in enumerate(titles)
    ]
    result = deduplicate(records)
    assert all(len(c) == 1 for c in result.clusters)


def test_same_doi_with_an_unrelated_title_is_refused_even_for_two_records():
    result = deduplicate(
        [
            rec(1, doi="10.1000/x1"),
            rec(2, doi="10.1000/x1", title="Haematology abstracts of the annual meeting 2012"),
        ]
    )
    assert not merged(result, 1, 2)


def test_erratum_goes_to_a_human_never_merged_automatically():
    result = deduplicate(
        [
            rec(1, venue="J Pediatr", volume="142", pages="310-317"),
            rec(2, title="Erratum: " + TITLE, venue="J Pediatr", volume="142", pages="616"),
        ]
    )
    assert not merged(result, 1, 2)
    assert queued(result, 1, 2)
    assert "erratum" in result.candidates[0].reason


def test_correction_suffix_of_web_of_science_is_an_erratum():
    result = deduplicate([rec(1), rec(2, title=TITLE + " (vol 360, pg 542, 2009)")])
    assert not merged(result, 1, 2)


def test_medline_erratum_note_on_the_article_itself_is_not_an_erratum():
    noted = TITLE + ".[Erratum appears in N Engl J Med. 2009 Jun 4;360(23):2487]"
    result = deduplicate([rec(1), rec(2, title=noted)])
    assert merged(result, 1, 2)


def test_comment_and_reply_never_join_the_paper_they_answer():
    records = [
        rec(1, doi="10.1000/a"),
        rec(2, title="Comment on: " + TITLE, authors=("Other, B.",)),
        rec(3, title=TITLE + " - Reply", authors=("Legendre, C. M.",)),
    ]
    result = deduplicate(records)
    assert all(len(c) == 1 for c in result.clusters)


def test_different_dois_with_the_same_title_go_to_the_queue():
    result = deduplicate([rec(1, doi="10.1000/aaa"), rec(2, doi="10.1000/aab")])
    assert not merged(result, 1, 2)
    assert queued(result, 1, 2)
    assert "different DOI" in result.candidates[0].reason


def test_years_far_apart_block_an_automatic_merge():
    result = deduplicate([rec(1, year=2008), rec(2, year=2012)])
    assert not merged(result, 1, 2)


def test_one_changed_word_is_a_different_study_not_a_typo():
    adult = "An open-label multicentre trial of eculizumab in adult patients with atypical HUS"
    result = deduplicate([rec(1, title=adult), rec(2, title=adult.replace("adult", "paediatric"))])
    assert not merged(result, 1, 2)
    assert "words differ" in result.candidates[0].reason


def test_part_numbers_differ():
    t = "Stroke rehabilitation after discharge: a systematic review, part 1"
    result = deduplicate([rec(1, title=t), rec(2, title=t.replace("part 1", "part 2"))])
    assert not merged(result, 1, 2)


def test_record_without_title_is_only_merged_on_an_identifier():
    base = dict(venue="Nat Rev Nephrol", volume="7", pages="23-35")
    result = deduplicate([rec(1, **base), rec(2, title="", **base)])
    assert not merged(result, 1, 2)
    assert queued(result, 1, 2)
    result = deduplicate(
        [rec(1, doi="10.1000/z", **base), rec(2, title="", doi="10.1000/z", **base)]
    )
    assert merged(result, 1, 2)


def test_chaining_guard_keeps_records_with_different_dois_apart():
    typo = TITLE.replace("trial", "trail")
    records = [rec(1, doi="10.1000/one"), rec(2), rec(3, title=typo, doi="10.1000/two")]
    result = deduplicate(records)
    assert not merged(result, 1, 3)
    assert merged(result, 1, 2) or merged(result, 2, 3)


def test_existing_studies_are_groups_and_two_of_them_are_never_joined_automatically():
    records = [
        rec(1, group="s1"),
        rec(2, group="s1", title="Something else entirely about stroke units"),
        rec(3, group="s2", title=TITLE),
        rec(4),
    ]
    result = deduplicate(records)
    assert merged(result, 1, 2)
    assert not merged(result, 1, 3)
    assert merged(result, 4, 1) or merged(result, 4, 3)


def test_a_pair_a_reviewer_refused_is_not_merged_again():
    result = deduplicate([rec(1), rec(2)], cannot_link=[(1, 2)])
    assert not merged(result, 1, 2)
    assert not queued(result, 1, 2)


def test_normalisation_helpers():
    assert page_key("73-6") == ("73", "76")
    assert page_key("e8-e9") == ("8", "9")
    assert surname("Smith, J.") == surname("J. Smith") == surname("Smith JA") == "smith"
    assert normalise_doi("https://dx.doi.org/10.1000/ABC.") == "10.1000/abc"
    assert title_key("[Clinical research on X in China]. [Chinese]") == title_key(
        "Clinical research on X in China"
    )
    assert venues_compatible(
        venue_tokens("Nat Rev Nephrol"), venue_tokens("Nature Reviews Nephrology")
    )
    assert venues_compatible(
        venue_tokens("Dtsch Med Wochenschr"), venue_tokens("Deutsche medizinische Wochenschrift")
    )
    assert not venues_compatible(
        venue_tokens("American Heart Journal"), venue_tokens("European Heart Journal")
    )
    assert title_similarity("a b c", "a b c") == 1.0


def test_titles_near_is_title_similarity_at_the_threshold_for_every_pair():
    """The batched check (rapidfuzz's C++ on every core) decides each pair as
    `title_similarity(a, b) >= 0.7` does: typos, word order, a dropped subtitle, a kept
    subtitle only, unrelated titles, and pairs right around the threshold, some of them
    ruled out by their lengths alone."""
    base = [
        title_key(TITLE),
        title_key("Constraint-induced movement therapy after stroke: a randomised trial"),
        title_key("Intensive speech and language therapy in chronic aphasia after stroke"),
        "abcdefghij",
        "a b c",
    ]
    variants = []
    for title in base:
        words = title.split()
        variants += [
            title,
            title.replace("e", "a", 1),
            " ".join(reversed(words)),
            " ".join(words[: max(1, len(words) // 2)]),
            " ".join(words[len(words) // 2 :]),
            title + " a cohort study",
            "".join(sorted(title)).strip(),
        ]
    # Every cut of a title against it: the ratios sweep across the threshold. Titles as the
    # scans hold them: folded, no space at either end.
    variants += [base[1][:n].strip() for n in range(1, len(base[1]), 3)]
    variants += [base[1][n:].strip() for n in range(1, len(base[1]), 3)]
    pairs = [(a, b) for a in variants for b in variants]
    expected = [title_similarity(a, b) >= 0.7 for a, b in pairs]
    assert titles_near([a for a, _ in pairs], [b for _, b in pairs]) == expected
    assert 0 < sum(expected) < len(pairs) / 2
    assert titles_near([], []) == []


def test_blocking_grows_close_to_linearly():
    words = "stroke aphasia therapy trial cohort outcome pleural infection renal transplant".split()
    records = [
        DedupRecord(
            key=i,
            title=" ".join(words[(i // 10**k) % 10] for k in range(3)) + f" study number {i}",
            year=2000 + i % 20,
            authors=(f"Author{i % 997}, A.",),
        )
        for i in range(6000)
    ]
    pairs = candidate_pairs([_Feat(r) for r in records])
    assert len(pairs) < 15 * len(records)


def test_most_complete_display_fields():
    fields = most_complete(
        [
            {"title": "Short", "abstract": "a", "authors": ["A"], "year": 2010, "doi": ""},
            {
                "title": "Short title",
                "abstract": "a longer abstract",
                "authors": ["A", "B"],
                "year": 2010,
                "doi": "10.1/x",
            },
            {"title": "", "abstract": "", "authors": [], "year": 2011, "doi": ""},
        ]
    )
    assert fields["abstract"] == "a longer abstract"
    assert fields["doi"] == "10.1/x"
    assert fields["authors"] == ["A", "B"]
    assert fields["year"] == 2010


@pytest.mark.parametrize("title", ["", "   "])
def test_blank_titles_do_not_crash(title):
    assert len(deduplicate([rec(1, title=title), rec(2, title=title)]).clusters) == 2


def test_records_to_compare_keeps_only_the_studies_near_a_new_record():
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda sigma".split()
    existing = [
        DedupRecord(
            key=f"e{i}",
            title=f"{words[i % 12]} {words[(i // 12) % 12]} cohort number {i} of a registry",
            year=2000 + i % 20,
            authors=(f"Author{i}, A.",),
            group=f"s{i}",
        )
        for i in range(600)
    ]
    existing += [rec("old-1", group="trial"), rec("old-2", group="trial", year=2013)]
    compared = records_to_compare([rec("new", title=TITLE.upper())], existing)
    keys = {r.key for r in compared}
    # Every record of the matching study, and a few title neighbours; not the review.
    assert {"old-1", "old-2"} <= keys
    assert len(keys) < 30


def test_packed_pairs_are_each_pair_once_in_the_order_of_the_tuples():
    pairs = [(3, 9), (0, 7), (3, 9), (2**31 - 1, 2**32 - 1), (0, 1), (0, 7), (5, 6)]
    packed = _packed_pairs(iter(pairs))
    unpacked = [(p >> _PAIR_SHIFT, p & (2**_PAIR_SHIFT - 1)) for p in packed.tolist()]
    assert unpacked == sorted(set(pairs))
    assert _packed_pairs(iter([])).tolist() == []
    assert [p & 0xFFFF for p in _packed_pairs(iter([(1, 2)])).tolist()] == [2]


def test_without_keeps_the_pairs_not_taken():
    pairs = _packed_pairs([(0, 1), (0, 2), (1, 5), (4, 8), (7, 9)])
    taken = _packed_pairs([(0, 2), (4, 8), (9, 10)])
    kept = _without(pairs, taken)
    assert kept.tolist() == _packed_pairs([(0, 1), (1, 5), (7, 9)]).tolist()
    assert _without(pairs, _packed_pairs([])).tolist() == pairs.tolist()
    assert _without(_packed_pairs([]), taken).tolist() == []
    # Every pair taken, and pairs beyond the last taken one.
    assert _without(taken, taken).tolist() == []
    assert _without(_packed_pairs([(20, 21)]), taken).tolist() == [20 << _PAIR_SHIFT | 21]


def test_a_titles_notice_and_key_are_those_computed_apart():
    """`_title_features` folds most titles once for both their notice kind and their key: the
    same as `notice_kind` and `title_key(strip_notes(...))` give, for titles with notes,
    correction suffixes, notice prefixes, annotations, brackets, LaTeX and markup, and every
    title of the shared real benchmarks."""
    titles = [
        TITLE,
        "Erratum: " + TITLE,
        "Correction to: Deep learning for triage",
        TITLE + " (vol 360, pg 542, 2009)",
        TITLE + " (New Engl J Med (2009) 360 (542-544))",
        TITLE + " [Erratum appears in N Engl J Med 2009;361:1234]",
        TITLE + " [Chinese]",
        "[" + TITLE + "].",
        "[Stroke rehabilitation in China] [Chinese]",
        "The (big) question of stroke care",
        "Reply to: comment on " + TITLE,
        "Stroke care: the authors reply",
        "R\\'{e}sum\\'{e} of {B}ayesian methods $\\alpha$",
        "<i>In vivo</i> imaging &amp; stroke",
        "  Retraction notice: " + TITLE + ". ",
        "Title [abstract].",
        "x",
    ]
    if BENCH.exists():
        for name in ("stroke", "haematology", "respiratory"):
            titles += [record.title for record in read_set(name)[0]]
    checked = 0
    for title in titles:
        for publication_type in ("", "Erratum", "Journal Article"):
            notice, key = _title_features.__wrapped__(title, publication_type)[:2]
            # A record without a title is no notice, whatever its type.
            assert (notice, key) == (
                notice_kind(title, publication_type) if title else "",
                title_key(strip_notes(title)),
            ), title
            checked += 1
    assert checked >= 3 * 17
