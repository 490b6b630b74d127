"""The documentation: every page there, every link resolving, every generated table equal to its files,
and README a user guide (short, with no machine paths, issue numbers or paths outside the repository)."""

import re
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import tables  # noqa: E402

PAGES = [
    "pipeline",
    "configuration",
    "scoring-and-retrieval",
    "matchers",
    "performance",
    "data",
    "validation",
    "development",
]
DOCUMENTS = [REPO / "README.md", *(REPO / "docs" / f"{page}.md" for page in PAGES), REPO / "benchmarks" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lowercased, punctuation dropped, spaces as hyphens."""
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    }


@pytest.mark.parametrize("page", PAGES)
def test_every_docs_page_exists_and_readme_links_it(page):
    assert (REPO / "docs" / f"{page}.md").exists()
    assert f"(docs/{page}.md)" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves_to_a_file_and_heading(document):
    for target in LINK.findall(document.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.exists(), f"{document.relative_to(REPO)} links {target}, which does not exist"
        assert linked.is_relative_to(REPO), f"{document.relative_to(REPO)} links {target}, outside the repository"
        if anchor:
            assert anchor in anchors(linked.read_text()), (
                f"{document.relative_to(REPO)} links {target}: no such heading"
            )


def test_every_generated_table_equals_what_its_files_give():
    assert tables.stale_pages() == [], "run python benchmarks/tables.py (make tables)"
    pages = [page.read_text() for page in tables.PAGES if page.exists()]
    marked = {match.group("name") for text in pages for match in tables.MARKED.finditer(text)}
    assert marked == set(tables.TABLES), "every table is placed in a page, and every placed table is known"


def test_a_stale_table_is_found(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("text\n<!-- table:retrieval -->\n| an old figure |\n<!-- /table:retrieval -->\n")
    monkeypatch.setattr(tables, "PAGES", [page])
    assert tables.stale_pages() == [page]
    page.write_text(tables.regenerated(page.read_text(), page))
    assert tables.stale_pages() == [] and "recall@20" in page.read_text()


def test_readme_is_a_short_user_guide():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "../shared" not in text and "/work/" not in text
    for document in DOCUMENTS:
        content = document.read_text()
        assert not re.search(r"\bissue \d+|\(#\d+\)", content, re.IGNORECASE), f"{document.name} cites an issue number"
        assert "../shared" not in content and "/work/" not in content, f"{document.name} points outside the repository"


def test_a_benchmark_run_is_recorded_with_its_command_machine_date_and_what_it_printed(tmp_path, monkeypatch):
    import results

    monkeypatch.setattr(results, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["benchmarks/probe.py", "--queries", "5"])
    monkeypatch.setenv("RESULT_NAME", "probe_run")
    results.run_recorded("probe", lambda: print("| k | recall |\n| 20 | 0.93 |"))
    (record,) = results.records("probe")
    assert record["command"] == "python benchmarks/probe.py --queries 5" and record["script"] == "benchmarks/probe.py"
    assert record["results"]["printed"] == "| k | recall |\n| 20 | 0.93 |\n"
    assert record["machine"]["cores"] >= 1 and record["date"][:2] == "20"
    assert (tmp_path / "probe" / "probe_run.json").exists()


def test_a_benchmark_that_returns_figures_has_them_recorded_beside_what_it_printed(tmp_path, monkeypatch):
    import results

    monkeypatch.setattr(results, "RESULTS", tmp_path)
    monkeypatch.setenv("RESULT_NAME", "figures_run")

    def main() -> dict:
        print("stage  wall s")
        return {"stages": {"prepare": {"seconds": 4.0, "peak_gib": 1.5}}}

    results.run_recorded("probe", main)
    (record,) = results.records("probe")
    assert record["results"] == {"printed": "stage  wall s\n", "stages": {"prepare": {"seconds": 4.0, "peak_gib": 1.5}}}


def test_the_scale_table_shows_a_run_in_one_go_with_its_totals_and_leaves_out_a_resumed_one(monkeypatch):
    def run(name: str, repro_seconds: list[float]) -> dict:
        stages = {"prepare": {"seconds": 90.5, "peak_gib": 6.0}, "features": {"seconds": 200.0, "peak_gib": 7.6}}
        return {
            "name": name,
            "date": "2026-12-05",
            "machine": {"cpu": "EPYC", "cores": 2},
            "results": {
                "products": 2_251_125,
                "pairs": 1_211_647,
                "matchers": ["lightgbm", "siamese"],
                "settings": "encoder=static",
                "stages": stages,
                "repro_seconds": repro_seconds,
                "noop_seconds": 1.4,
            },
        }

    monkeypatch.setattr(tables, "records", lambda script: [run("resumed", [100.0, 300.0]), run("whole", [301.2])])
    text = tables.scale_table()
    assert "`resumed`" not in text
    assert text.startswith("`whole`: 2,251,125 products and 1,211,647 pairs after prepare, matchers lightgbm, siamese;")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()[4:]]
    assert rows == [
        ["prepare", "90.5", "6.00"],
        ["features", "200.0", "7.60"],
        ["every stage", "290.5", ""],
        ["`dvc repro`, the whole DAG", "301.2", ""],
        ["`dvc repro` again, nothing to do", "1.4", ""],
        ["largest peak", "", "7.60"],
    ]
    monkeypatch.setattr(tables, "records", lambda script: [run("resumed", [100.0, 300.0])])
    assert tables.scale_table().startswith("No record yet")
