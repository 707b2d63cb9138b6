"""The demo review's records: the seed's 30 included studies among generated ones, written
as each library's own export file (ACM Digital Library BibTeX, IEEE Xplore CSV, ScienceDirect
RIS, Springer Link CSV) so that `load_demo` imports them through the real import path.

Pure Python and deterministic: the same seed gives byte-identical files. Each entry carries a
`kind` the demo reviewers' verdicts follow ("included", "mlops", "application", "other"); a
fuzzy duplicate is the same paper as another library lists it (title case and punctuation,
initials, sometimes no DOI), so the duplicate detection has work, some of it for a human.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

ACM, IEEE, SCIENCEDIRECT, SPRINGER = (
    "ACM Digital Library",
    "IEEE Xplore",
    "ScienceDirect",
    "Springer Link",
)
RANDOM_SEED = 20210731

_PRACTICES = (
    "continuous training",
    "model serving",
    "model monitoring",
    "data drift detection",
    "feature stores",
    "experiment tracking",
    "model registries",
    "CI/CD pipelines for machine learning",
    "reproducible ML pipelines",
    "model versioning",
    "data validation",
    "automated retraining",
    "ML model governance",
    "deployment of deep learning models",
    "edge deployment of ML models",
    "technical debt in ML systems",
)
_MLOPS_TITLES = (
    "{P}: an industrial experience report",
    "Towards {p} in production machine learning systems",
    "A maturity model for {p}",
    "Challenges of {p}: a multiple case study",
    "{P} with Kubernetes and open-source MLOps tools",
    "An architecture for {p} in the machine learning lifecycle",
    "Roles and responsibilities in {p}: an interview study",
    "Lessons learned from {p} at scale",
)
_TASKS = (
    "image classification",
    "anomaly detection",
    "demand forecasting",
    "sentiment analysis",
    "fault diagnosis",
    "churn prediction",
    "object detection",
    "time-series forecasting",
)
_DOMAINS = (
    "medical imaging",
    "predictive maintenance",
    "credit scoring",
    "crop yield estimation",
    "traffic prediction",
    "network intrusion detection",
    "smart grids",
    "manufacturing quality control",
    "e-commerce recommendation",
    "remote sensing",
)
_APPLICATION_TITLES = (
    "A deep learning approach to {t} in {d}",
    "Machine learning based {t} for {d}",
    "Comparing gradient boosting and neural networks for {t} in {d}",
    "An explainable model for {t} in {d}",
)
_OTHER_TOPICS = (
    "microservice architectures",
    "infrastructure as code",
    "DevOps adoption",
    "continuous delivery of web applications",
    "cloud cost optimisation",
    "site reliability engineering",
    "container orchestration",
    "software release engineering",
)
_OTHER_TITLES = (
    "{o}: a systematic mapping study",
    "An empirical study of {o} in small companies",
    "Security practices in {o}",
    "Measuring the benefits of {o}",
)
_SURNAMES = (
    "Silva Santos Oliveira Souza Costa Pereira Almeida Ferreira Rodrigues Lima Gomes Martins "
    "Smith Johnson Brown Miller Wilson Taylor Anderson Thomas Moore Clark Lewis Walker "
    "Müller Schmidt Schneider Fischer Weber Wagner Becker Hoffmann Zhang Wang Li Liu Chen "
    "Yang Huang Zhao Wu Zhou Kim Lee Park Nguyen Tanaka Suzuki Rossi Russo Bianchi García "
    "Martínez López Sánchez Novak Kowalski Nielsen Johansson Virtanen Kumar Sharma Singh"
).split()
_VENUES: dict[str, tuple[tuple[str, str], ...]] = {
    ACM: (
        (
            "conference",
            "Proceedings of the ACM/IEEE International Conference on Software Engineering",
        ),
        ("conference", "Proceedings of the International Conference on Management of Data"),
        ("conference", "Proceedings of the ACM Symposium on Cloud Computing"),
        ("journal", "ACM Computing Surveys"),
        ("journal", "ACM Transactions on Software Engineering and Methodology"),
    ),
    IEEE: (
        ("journal", "IEEE Access"),
        ("journal", "IEEE Software"),
        ("conference", "2020 IEEE International Conference on Big Data (Big Data)"),
        ("conference", "2021 IEEE International Conference on Cloud Engineering (IC2E)"),
    ),
    SCIENCEDIRECT: (
        ("journal", "Journal of Systems and Software"),
        ("journal", "Information and Software Technology"),
        ("journal", "Future Generation Computer Systems"),
        ("journal", "Expert Systems with Applications"),
        ("journal", "Procedia Computer Science"),
    ),
    SPRINGER: (
        ("chapter", "Product-Focused Software Process Improvement"),
        ("chapter", "Advances in Intelligent Systems and Computing"),
        ("journal", "Empirical Software Engineering"),
        ("journal", "Machine Learning"),
    ),
}


@dataclass(frozen=True)
class Entry:
    """One paper as one library lists it."""

    key: str  # the paper (shared by its duplicates)
    kind: str  # "included" | "mlops" | "application" | "other"
    library: str
    title: str
    authors: tuple[str, ...]  # "Surname, I."
    year: int
    venue: str
    publication: str  # "journal" | "conference" | "chapter"
    doi: str
    abstract: str
    keywords: tuple[str, ...] = ()
    volume: str = ""
    issue: str = ""
    pages: str = ""
    duplicate_of: str = field(default="", compare=False)


def _title_and_kind(rng: random.Random) -> tuple[str, str, tuple[str, ...]]:
    draw = rng.random()
    if draw < 0.2:
        practice = rng.choice(_PRACTICES)
        title = rng.choice(_MLOPS_TITLES).format(p=practice, P=practice[0].upper() + practice[1:])
        return title, "mlops", ("MLOps", practice, "machine learning operations")
    if draw < 0.65:
        task, domain = rng.choice(_TASKS), rng.choice(_DOMAINS)
        title = rng.choice(_APPLICATION_TITLES).format(t=task, d=domain)
        return title, "application", ("machine learning", task, domain)
    topic = rng.choice(_OTHER_TOPICS)
    title = rng.choice(_OTHER_TITLES).format(o=topic)
    return title[0].upper() + title[1:], "other", ("DevOps", topic)


def _abstract(title: str, kind: str, rng: random.Random) -> str:
    opening = {
        "mlops": "Putting machine learning models into production and keeping them there "
        "remains hard for many organisations.",
        "application": "Machine learning models reach high accuracy in many domains.",
        "other": "Software teams increasingly automate how they build, test and release.",
    }[kind]
    middle = rng.choice(
        (
            "We report a case study with {n} practitioners from {m} companies.",
            "We surveyed {n} engineers and analysed {m} open-source projects.",
            "We evaluate the approach on {m} data sets with {n} thousand samples.",
        )
    ).format(n=rng.randint(8, 90), m=rng.randint(2, 12))
    closing = rng.choice(
        (
            "The results point to automation, monitoring and team roles as open problems.",
            "Our results show a clear improvement over the baseline.",
            "We discuss implications for researchers and practitioners.",
        )
    )
    return f"{opening} This paper addresses {title[0].lower() + title[1:]}. {middle} {closing}"


def _authors(rng: random.Random) -> tuple[str, ...]:
    names = rng.sample(_SURNAMES, rng.randint(1, 5))
    return tuple(f"{name}, {rng.choice('ABCDEFGHJKLMNPRST')}." for name in names)


def _doi(library: str, publication: str, year: int, number: int) -> str:
    if library == ACM:
        return f"10.1145/{3300000 + number}.{3400000 + number * 7 % 99991}"
    if library == IEEE:
        return (
            f"10.1109/ACCESS.{year}.{3000000 + number}"
            if publication == "journal"
            else f"10.1109/BigData{year}.{number:05d}"
        )
    if library == SCIENCEDIRECT:
        return f"10.1016/j.demo.{year}.{100000 + number}"
    return (
        f"10.1007/978-3-030-{50000 + number}-{number % 10}_{number % 40 + 1}"
        if publication == "chapter"
        else f"10.1007/s10664-0{year % 100}-{number:05d}-{number % 10}"
    )


def generated_entry(library: str, number: int, rng: random.Random) -> Entry:
    """A plausible record of the MLOps searches, as `library` would list it."""
    title, kind, keywords = _title_and_kind(rng)
    publication, venue = rng.choice(_VENUES[library])
    year = rng.randint(2014, 2021)
    first = rng.randint(1, 900)
    return Entry(
        key=f"g{number}",
        kind=kind,
        library=library,
        title=title,
        authors=_authors(rng),
        year=year,
        venue=venue,
        publication=publication,
        doi=_doi(library, publication, year, number),
        abstract=_abstract(title, kind, rng),
        keywords=keywords,
        volume=str(rng.randint(5, 190)) if publication == "journal" else "",
        pages=f"{first}-{first + rng.randint(5, 20)}",
    )


def included_entry(study: dict[str, Any]) -> Entry:
    """One of the seed's included studies, as its reference list gives it."""
    return Entry(
        key=study["doi"],
        kind="included",
        library=study["library"],
        title=study["title"],
        authors=tuple(study["authors"]),
        year=study["year"],
        venue=study["venue"],
        publication=study["kind"],
        doi=study["doi"],
        abstract=(
            f"{study['title']}. This study on operationalising machine learning "
            "(MLOps) addresses the deployment, monitoring and maintenance of machine learning "
            "models in production."
        ),
        keywords=("MLOps", "machine learning lifecycle"),
        volume=study.get("volume", ""),
        issue=study.get("issue", ""),
        pages=study.get("pages", ""),
    )


def fuzzy_copy(entry: Entry, library: str, rng: random.Random) -> Entry:
    """The same paper as another library lists it: never byte-identical."""
    title = entry.title
    # An included paper differs only in its authors' initials: its title stays the reference
    # list's, whichever record the study shows.
    change = 3 if entry.kind == "included" else rng.randrange(4)
    if change == 0:
        title = title.lower().capitalize()
    elif change == 1:
        title = title.replace(":", " -").replace("–", "-") + "."
    elif change == 2:
        title = title.replace(" and ", " & ")
    else:
        title = " ".join(title.split()) + " "
    authors = tuple(a.split(",")[0] + ", " + a.split(",")[-1].strip()[:1] for a in entry.authors)
    return replace(
        entry,
        library=library,
        title=title.strip() if change != 3 else title,
        authors=authors,
        # An included paper keeps its DOI everywhere (the demo's Table 5 is found by DOI).
        doi="" if entry.kind != "included" and rng.random() < 0.35 else entry.doi.upper(),
        duplicate_of=entry.key,
    )


@dataclass
class Corpus:
    """Entries per search run: (search string index, library) -> entries, in file order."""

    runs: dict[tuple[int, str], list[Entry]]

    def entries(self) -> list[Entry]:
        return [entry for entries in self.runs.values() for entry in entries]


def corpus_build(
    *,
    hits: dict[tuple[int, str], int],
    included: Sequence[dict[str, Any]],
    duplicates: int,
    seed: int = RANDOM_SEED,
) -> Corpus:
    """Fill every run's reported hit count: the included studies in their library's runs,
    `duplicates` fuzzy copies of papers from other libraries, generated papers for the rest."""
    rng = random.Random(seed)
    slots = [run for run, n in sorted(hits.items()) for _ in range(n)]
    rng.shuffle(slots)
    placed: list[tuple[tuple[int, str], Entry | None]] = []
    pending = [included_entry(study) for study in included]
    for run in slots:
        match = next((e for e in pending if e.library == run[1]), None)
        if match is not None:
            pending.remove(match)
        placed.append((run, match))
    copy_slots = set(rng.sample(range(len(placed)), duplicates))
    originals: list[Entry] = []
    for index, (run, entry) in enumerate(placed):
        if entry is None and index not in copy_slots:
            entry = generated_entry(run[1], index, rng)
            placed[index] = (run, entry)
        if entry is not None:
            originals.append(entry)
    for index in sorted(copy_slots):
        run, entry = placed[index]
        if entry is None:
            others = [e for e in originals if e.library != run[1] and e.kind != "application"]
            placed[index] = (run, fuzzy_copy(rng.choice(others), run[1], rng))
    runs: dict[tuple[int, str], list[Entry]] = {run: [] for run in sorted(hits)}
    for run, entry in placed:
        assert entry is not None
        runs[run].append(entry)
    return Corpus(runs={run: entries for run, entries in runs.items() if entries})


# --- each library's export format ------------------------------------------------------------


def _bibtex_value(value: str) -> str:
    return value.replace("\\", "").replace("{", "(").replace("}", ")")


def acm_bibtex(entries: Sequence[Entry]) -> bytes:
    """ACM Digital Library's BibTeX export (keys are the DOI, `author = {A and B}`)."""
    out = []
    for entry in entries:
        kind = "article" if entry.publication == "journal" else "inproceedings"
        container = "journal" if kind == "article" else "booktitle"
        fields = [
            ("author", " and ".join(entry.authors)),
            ("title", entry.title),
            ("year", str(entry.year)),
            ("publisher", "Association for Computing Machinery"),
            ("address", "New York, NY, USA"),
            ("url", f"https://doi.org/{entry.doi}" if entry.doi else ""),
            ("doi", entry.doi),
            (container, entry.venue),
            ("volume", entry.volume),
            ("pages", entry.pages.replace("-", "–")),
            ("keywords", ", ".join(entry.keywords)),
            ("abstract", entry.abstract),
        ]
        body = ",\n".join(f"{k} = {{{_bibtex_value(v)}}}" for k, v in fields if v)
        out.append(f"@{kind}{{{entry.doi or entry.key},\n{body}\n}}\n")
    return "\n".join(out).encode("utf-8")


IEEE_COLUMNS = (
    "Document Title,Authors,Author Affiliations,Publication Title,Date Added To Xplore,"
    "Publication Year,Volume,Issue,Start Page,End Page,Abstract,ISSN,ISBNs,DOI,"
    "Funding Information,PDF Link,Author Keywords,IEEE Terms,INSPEC Controlled Terms,"
    "INSPEC Non-Controlled Terms,Mesh_Terms,Article Citation Count,Patent Citation Count,"
    "Reference Count,License,Online Date,Issue Date,Meeting Date,Publisher,Document Identifier"
).split(",")


IEEE_PDF = "https://ieeexplore.ieee.org/stamp/stamp.jsp?arnumber="


def _ieee_initials(author: str) -> str:
    surname, _, initials = author.partition(", ")
    return f"{initials} {surname}".strip()


def ieee_csv(entries: Sequence[Entry]) -> bytes:
    """IEEE Xplore's CSV export (authors "A. Name; B. Name", every column quoted)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=IEEE_COLUMNS, quoting=csv.QUOTE_ALL)
    writer.writeheader()
    for number, entry in enumerate(entries, start=1):
        start, _, end = entry.pages.partition("-")
        writer.writerow(
            {
                "Document Title": entry.title,
                "Authors": "; ".join(_ieee_initials(a) for a in entry.authors),
                "Publication Title": entry.venue,
                "Publication Year": str(entry.year),
                "Volume": entry.volume,
                "Issue": entry.issue,
                "Start Page": start,
                "End Page": end,
                "Abstract": entry.abstract,
                "DOI": entry.doi,
                "PDF Link": f"{IEEE_PDF}{9000000 + number}",
                "Author Keywords": ";".join(entry.keywords),
                "Publisher": "IEEE",
                "Document Identifier": "IEEE Journals"
                if entry.publication == "journal"
                else "IEEE Conferences",
            }
        )
    return buffer.getvalue().encode("utf-8")


def sciencedirect_ris(entries: Sequence[Entry]) -> bytes:
    """ScienceDirect's RIS export (TY JOUR, T2 the journal, DO and UR, AB)."""
    lines = []
    for entry in entries:
        start, _, end = entry.pages.partition("-")
        lines.append("TY  - JOUR" if entry.publication == "journal" else "TY  - CHAP")
        lines.append(f"T1  - {entry.title}")
        lines += [f"AU  - {author}" for author in entry.authors]
        lines += [f"JO  - {entry.venue}", f"VL  - {entry.volume}", f"SP  - {start}"]
        lines += [f"EP  - {end}", f"PY  - {entry.year}", f"DA  - {entry.year}/01/01"]
        if entry.doi:
            lines += [f"DO  - https://doi.org/{entry.doi}"]
        lines += [f"KW  - {keyword}" for keyword in entry.keywords]
        lines += [f"AB  - {entry.abstract}", "ER  - ", ""]
    return "\r\n".join(lines).encode("utf-8")


SPRINGER_COLUMNS = (
    "Item Title",
    "Publication Title",
    "Book Series Title",
    "Journal Volume",
    "Journal Issue",
    "Item DOI",
    "Authors",
    "Publication Year",
    "URL",
    "Content Type",
)


def springer_csv(entries: Sequence[Entry]) -> bytes:
    """Springer Link's CSV export: no abstracts, authors glued together as Springer does."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow(SPRINGER_COLUMNS)
    for entry in entries:
        glued = "".join(
            f"{a.partition(', ')[2]} {a.partition(', ')[0]}".strip() for a in entry.authors
        )
        chapter = entry.publication != "journal"
        writer.writerow(
            (
                entry.title,
                entry.venue,
                "Lecture Notes in Computer Science" if chapter else "",
                "" if chapter else entry.volume,
                "" if chapter else entry.issue,
                entry.doi,
                glued,
                str(entry.year),
                f"http://link.springer.com/{'chapter' if chapter else 'article'}/{entry.doi}"
                if entry.doi
                else "",
                "Chapter" if chapter else "Article",
            )
        )
    return buffer.getvalue().encode("utf-8")


EXPORTERS: dict[str, tuple[str, str, Callable[[Sequence[Entry]], bytes]]] = {
    ACM: ("bibtex", "bib", acm_bibtex),
    IEEE: ("csv", "csv", ieee_csv),
    SCIENCEDIRECT: ("ris", "ris", sciencedirect_ris),
    SPRINGER: ("csv", "csv", springer_csv),
}


def export_file(library: str, entries: Sequence[Entry]) -> tuple[str, str, bytes]:
    """(format, file extension, bytes) of `entries` as `library` exports them."""
    fmt, extension, write = EXPORTERS[library]
    return fmt, extension, write(entries)
