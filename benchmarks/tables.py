"""The tables in README.md and docs/ are generated from the files that hold their figures: the benchmark
scripts' records (`benchmarks/results/<script>/`) and the pipeline's own metrics. A table sits between
`<!-- table:NAME -->` and `<!-- /table:NAME -->`; `python benchmarks/tables.py` rewrites every table,
`--check` lists the stale ones and exits 1 (tests/test_docs.py runs it)."""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import records  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
MARKED = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table:(?P=name) -->)", re.DOTALL)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def machine_of(record: dict) -> str:
    machine = record["machine"]
    return machine.get("gpu") or f"{machine['cores']} cores of {machine['cpu']}"


def mean_spread(values: list[float]) -> str:
    """The mean, and ± half the range when there are several values."""
    mean = float(np.mean(values))
    return f"{mean:.4f}" if len(values) == 1 else f"{mean:.4f} ±{(max(values) - min(values)) / 2:.4f}"


def seed_figures(figures: list[dict], keys: tuple[str, ...] = ("test_f1", "test_pr_auc", "oof_f1")) -> list[str]:
    """Each key's mean and spread over the seeds' figures."""
    return [mean_spread([f[key] for f in figures]) for key in keys]


def real_offers_table() -> str:
    """Test F1 at the out-of-fold threshold, test PR-AUC and out-of-fold F1 by machine, benchmark and model,
    over the seeds of every record."""
    runs: dict[tuple[str, str, str], list[dict]] = {}
    dates, sources = set(), set()
    for record in records("real_offers"):
        if record["results"].get("encoder", "lexical") != "lexical":  # the text encoders' own table
            continue
        if "inner_test" in record["results"]:  # figures for choices, on held-out train pairs: their own table
            continue
        dates.add(record["date"])
        sources.add(record["command"].split(" --", 1)[0])
        for benchmark, models in record["results"]["runs"].items():
            for model, seeds in models.items():
                runs.setdefault((machine_of(record), benchmark, model), []).extend(seeds.values())
    rows = [
        [
            machine,
            benchmark,
            model,
            str(len(figures)),
            *seed_figures(figures),
        ]
        for (machine, benchmark, model), figures in sorted(runs.items(), key=lambda item: item[0][:2])
    ]
    header = ["machine", "benchmark", "model", "seeds", "test F1 (OOF threshold)", "test PR-AUC", "OOF F1"]
    note = f"\nMean ± half the range over the seeds; recorded {', '.join(sorted(dates))}.\n"
    return markdown(header, rows) + note


def text_encoders_table() -> str:
    """The real offers by text encoder (`real_offers.py --encoder`): LightGBM's figures over the seeds and
    the mean seconds of a run, from the records that name their encoder."""
    runs: dict[tuple[str, str, str], list[dict]] = {}
    for record in records("real_offers"):
        encoder = record["results"].get("encoder") if "inner_test" not in record["results"] else None
        for benchmark, models in record["results"]["runs"].items() if encoder else ():
            for model, seeds in models.items():
                runs.setdefault((benchmark, encoder, model), []).extend(seeds.values())
    rows = [
        [
            benchmark,
            encoder,
            model,
            str(len(figures)),
            *seed_figures(figures),
            f"{np.mean([f['seconds'] for f in figures]):.0f}",
        ]
        for (benchmark, encoder, model), figures in sorted(runs.items())
    ]
    header = ["benchmark", "encoder", "model", "seeds", "test F1 (OOF threshold)", "test PR-AUC", "OOF F1", "run, s"]
    return markdown(header, rows)


def inner_split_table() -> str:
    """The runs that choices were made on (`real_offers.py --inner-test`): a row a record, benchmark and
    model, with what the configuration set, over the seeds."""
    rows = []
    for record in records("real_offers"):
        results = record["results"]
        if "inner_test" not in results:
            continue
        for benchmark, models in results["runs"].items():
            for model, seeds in models.items():
                figures = list(seeds.values())
                rows.append(
                    [
                        record["name"],
                        benchmark,
                        model,
                        str(len(figures)),
                        *seed_figures(figures, ("test_f1", "test_f1_best_threshold", "test_pr_auc", "oof_f1")),
                    ]
                )
    header = ["record", "benchmark", "model", "seeds", "held-out F1 (OOF threshold)", "at the best threshold"]
    return markdown([*header, "held-out PR-AUC", "OOF F1"], rows)


def catalog_rows(inner: bool) -> list[list[str]]:
    """A row a record and benchmark of `retrieval_real_offers.py`, test runs or `--inner-test` ones."""
    rows = []
    for record in records("retrieval_real_offers"):
        results = record["results"]
        if ("inner_test" in results) != inner:
            continue
        for benchmark, seeds in results["runs"].items():
            runs = list(seeds.values())

            def spread(*path: str, runs=runs) -> str:
                return mean_spread([functools.reduce(dict.__getitem__, path, run) for run in runs])

            blocks = sorted({"+".join(run["blocks"]) for run in runs})
            rules = sorted({run["catalog_out_of_fold"]["catalog_rule"] for run in runs})
            decided_on = sorted({run.get("decided_on", "out_of_fold").replace("_", " ") for run in runs})
            rows.append(
                [
                    *([record["name"]] if inner else []),
                    benchmark,
                    str(len(runs)),
                    ", ".join(blocks),
                    spread("index", "recall_at_20"),
                    ", ".join(rules),
                    ", ".join(decided_on),
                    spread("end_to_end", "precision"),
                    spread("end_to_end", "recall"),
                    spread("end_to_end", "f1"),
                    spread("catalog_out_of_fold", "catalog_f1"),
                    spread("given_pairs", "f1"),
                    spread("oof_f1"),
                ]
            )
    return rows


CATALOG_HEADER = ["benchmark", "seeds", "blocks", "recall@20 (index)", "rule", "decided on"]
CATALOG_HEADER += ["precision (lower bound)", "recall", "F1", "F1 where decided", "pair model, given pairs F1"]
CATALOG_HEADER += ["pair model OOF F1"]


def catalog_matching_table() -> str:
    """`retrieval_real_offers.py` on the test pairs: catalog matching end to end, over the seeds."""
    return markdown(CATALOG_HEADER, catalog_rows(inner=False))


def catalog_choices_table() -> str:
    """`retrieval_real_offers.py --inner-test`: the runs the candidate model's settings were chosen on."""
    return markdown(["record", *CATALOG_HEADER], catalog_rows(inner=True))


def decision_rules_table() -> str:
    """The candidate model's decision rules out of fold (`retrieval_real_offers.py` records that hold
    them): F1 of each at its best threshold, over the seeds."""
    rows = []
    for record in records("retrieval_real_offers"):
        for benchmark, seeds in record["results"]["runs"].items():
            runs = [run for run in seeds.values() if "rules_out_of_fold" in run]
            if not runs:
                continue
            rules = runs[0]["rules_out_of_fold"]
            rows.append(
                [
                    record["name"],
                    benchmark,
                    str(len(runs)),
                    *(mean_spread([run["rules_out_of_fold"][rule]["f1"] for run in runs]) for rule in rules),
                    mean_spread([run["best_candidates_asked_share"] for run in runs]),
                ]
            )
            header = ["record", "benchmark", "seeds", *(f"{rule}: OOF F1" for rule in rules)]
    if not rows:
        return ""
    return markdown([*header, "best candidates asked themselves"], rows)


def scale_table() -> str:
    """`scale.py`: every stage of a whole `dvc repro` at a demo's volume, a table a record; a run resumed
    after a stop is left out (its wall time counts stages twice)."""
    parts = []
    for record in records("scale"):
        results = record["results"]
        if len(results.get("repro_seconds", [])) != 1:
            continue
        stages = results["stages"]
        rows = [[stage, f"{f['seconds']:.1f}", f"{f['peak_gib']:.2f}"] for stage, f in stages.items()]
        rows.append(["every stage", f"{sum(f['seconds'] for f in stages.values()):.1f}", ""])
        rows.append(["`dvc repro`, the whole DAG", f"{results['repro_seconds'][0]:.1f}", ""])
        rows.append(["`dvc repro` again, nothing to do", f"{results['noop_seconds']:.1f}", ""])
        rows.append(["largest peak", "", f"{max(f['peak_gib'] for f in stages.values()):.2f}"])
        settings = f"; {results['settings']}" if results["settings"] else ""
        parts.append(
            f"`{record['name']}`: {results['products']:,} products and {results['pairs']:,} pairs after prepare, "
            f"matchers {', '.join(results['matchers'])}{settings}; {machine_of(record)}, {record['date']}.\n\n"
            + markdown(["stage", "wall s", "peak GiB"], rows)
        )
    return "\n".join(parts) or "No record yet: `python benchmarks/scale.py` writes one.\n"


def stage_threads_table() -> str:
    """`stage_threads.py`: each CPU stage on one thread and on more, a row a record and stage."""
    rows = []
    for record in records("stage_threads"):
        for stage, figures in record["results"]["stages"].items():
            counts, runs = list(figures["seconds"]), figures["runs"]
            rows.append(
                [
                    f"{record['name']} ({machine_of(figures if 'machine' in figures else record)}, "
                    f"{runs} run{'s' if runs > 1 else ''} each)",
                    stage,
                    ", ".join(f"{figures['seconds'][c]:.1f} s on {c}" for c in counts),
                    f"{figures['speedup']:.2f}x",
                    ", ".join(f"{figures['peak_gib'][c]:.2f}" for c in counts),
                    "yes" if figures["same_bytes"] else "no",
                ]
            )
    header = ["record", "stage", "wall by threads", "speed-up", "peak GiB by threads", "same bytes"]
    return markdown(header, rows)


def stage_cores_table() -> str:
    """`stage_commands.py` (gpu_checks.sh volume): the CPU stages on a machine with more cores, each beside
    its seconds on the most threads of `stage_threads.py`'s full-size record, and whether its bytes were
    the reference dvc.lock's."""
    reference = next((r for r in records("stage_threads") if r["name"] == "cpu_full_size_demo"), None)
    before = {
        stage: figures["seconds"][max(figures["seconds"], key=int)]
        for stage, figures in (reference["results"]["stages"] if reference else {}).items()
    }

    def beside(seconds: float, there: float | None) -> list[str]:
        return (
            [f"{seconds:.1f}", "", ""]
            if there is None
            else [f"{seconds:.1f}", f"{there:.1f}", f"{there / max(seconds, 0.05):.2f}x"]
        )

    rows = []
    for record in records("stage_commands"):
        cores, cpu = record["machine"]["cores"], record["machine"]["cpu"]  # the CPU's figures, on a GPU machine too
        label = f"{record['name']} ({cores} cores of {cpu}, {record['results']['threads']} threads)"
        stages = record["results"]["stages"]
        for stage, figures in stages.items():
            same = figures.get("same_as_lock")
            bytes_cell = "" if same is None else "yes" if all(same.values()) else "no"
            rows.append(
                [label, stage, *beside(figures["seconds"], before.get(stage)), f"{figures['peak_gib']:.2f}", bytes_cell]
            )
        compared = [stage for stage in stages if stage in before]
        if compared:
            here, there = sum(stages[s]["seconds"] for s in compared), sum(before[s] for s in compared)
            rows.append([label, "those stages together", *beside(here, there), "", ""])
    if not rows:
        return "No record yet: `bash benchmarks/gpu_checks.sh volume` on a GPU machine writes one.\n"
    header = ["record", "stage", "seconds", "seconds in cpu_full_size_demo", "faster", "peak GiB", "same bytes"]
    return markdown(header, rows)


def catalog_speed_table() -> str:
    """`catalog_speed.py`: finding and scoring against a repository's catalog, a row a record and command."""
    header = ["record", "catalog products", "command", "work", "load s", "after loading s", "wall s", "peak GiB"]
    rows = []
    for record in records("catalog_speed"):
        results = record["results"]
        find, score = results["find"], results["score"]
        work = {"find": f"{find['queries']:,} queries x {find['k']}", "score": f"{score['pairs']:,} pairs"}
        for command, figures in (("matching-find", find), ("matching-score", score)):
            rows.append(
                [
                    f"{record['name']} ({machine_of(record)}, median of {figures['runs']})",
                    f"{results['products']:,}",
                    command,
                    work[command.removeprefix("matching-")],
                    f"{figures['load_s']:.1f}",
                    f"{figures['after_load_s']:.1f}",
                    f"{figures['wall_s']:.1f}",
                    f"{figures['peak_gib']:.2f}",
                ]
            )
    return markdown(header, rows)


def ablation_table() -> str:
    """Out-of-fold figures with each feature group removed, one table a record."""
    parts = []
    for record in records("ablation"):
        results = record["results"]
        datasets = list(results)
        header = ["features", *(f"{d} {'metric' if d == 'demo' else 'PR-AUC'}" for d in datasets)]
        names = list(results[datasets[0]])
        rows = [
            [name, *(f"{results[d][name]['competition_metric' if d == 'demo' else 'pr_auc']:.4f}" for d in datasets)]
            for name in names
        ]
        parts.append(markdown(header, rows) + f"\n{machine_of(record)}, recorded {record['date']}.\n")
    return "\n".join(parts)


def demo_matchers_table() -> str:
    """Every matcher's and the ensemble's out-of-fold figures from the last `dvc repro` (metrics/matchers.json)."""
    figures = json.loads((ROOT / "metrics" / "matchers.json").read_text())
    keys = ["competition_metric", "pr_auc", "roc_auc", "best_f1"]
    rows = [[name, *(f"{row[key]:.4f}" for key in keys)] for name, row in figures.items()]
    return markdown(["model", "competition metric", "PR-AUC", "ROC-AUC", "best F1"], rows)


def retrieval_table() -> str:
    """Recall@k of the known matches among a query's nearest products (metrics/retrieval.json)."""
    figures = json.loads((ROOT / "metrics" / "retrieval.json").read_text())
    ks = sorted(int(key.removeprefix("recall_at_")) for key in figures if key.startswith("recall_at_"))
    row = [f"{figures[f'recall_at_{k}']:.4f}" for k in ks] + [f"{figures['index_recall_at_20']:.4f}"]
    return markdown([*(f"recall@{k}" for k in ks), "index against exact search, @20"], [row])


def encoder_rates_table() -> str:
    """The text encoders at volume (benchmarks/encoder_rates.py): the transformer path against the model
    alone on the same batches and against its host work alone, the distillation, and the static encoder
    by threads."""
    rows = []
    for record in records("encoder_rates"):
        for modality, figures in record["results"].items():
            texts = figures["texts"]
            static = sorted(
                (int(key.split("_")[2]), seconds)
                for key, seconds in figures.items()
                if key.startswith("static_seconds_")
            )
            transformer = ["", "", "", "", ""]
            if "pipeline_seconds" in figures:
                host = figures.get("host")
                # the steps of each call (the pool starts once an encoder)
                steps = ("order_seconds", "submit_seconds", "tokenize_seconds", "batch_seconds")
                host_seconds = sum(host[step] for step in steps) if host else 0
                transformer = [
                    f"{texts / figures['model_alone_seconds']:,.0f}",
                    f"{texts / host_seconds:,.0f} ({host['processes']} processes)" if host else "",
                    f"{texts / figures['pipeline_seconds']:,.0f}",
                    f"{figures['pipeline_seconds']:.0f}",
                    f"{figures['model_alone_seconds'] / figures['pipeline_seconds']:.0%}",
                ]
            rows.append(
                [
                    machine_of(record),
                    f"{modality} ({figures['model']}, {figures['max_length']} tokens)",
                    f"{texts:,}",
                    *transformer,
                    f"{figures['distill_seconds']:.0f}" if "distill_seconds" in figures else "",
                    ", ".join(f"{seconds:.0f} s on {threads}" for threads, seconds in static),
                ]
            )
    header = ["machine", "texts of", "distinct texts", "model alone, texts/s", "host work alone, texts/s"]
    header += ["pipeline, texts/s", "pipeline, s"]
    header.append("pipeline / model alone")
    return markdown([*header, "distil, s", "static encoding, by threads"], rows)


TABLES: dict[str, Callable[[], str]] = {
    "real_offers": real_offers_table,
    "ablation": ablation_table,
    "demo_matchers": demo_matchers_table,
    "retrieval": retrieval_table,
    "encoder_rates": encoder_rates_table,
    "text_encoders": text_encoders_table,
    "inner_split": inner_split_table,
    "catalog_matching": catalog_matching_table,
    "catalog_choices": catalog_choices_table,
    "catalog_speed": catalog_speed_table,
    "decision_rules": decision_rules_table,
    "scale": scale_table,
    "stage_threads": stage_threads_table,
    "stage_cores": stage_cores_table,
}


def regenerated(text: str, page: Path) -> str:
    def fill(match: re.Match) -> str:
        name = match.group("name")
        if name not in TABLES:
            raise SystemExit(f"error: {page}: no table named {name!r}; use one of {', '.join(TABLES)}")
        return match.group(1) + TABLES[name]() + match.group(4)

    return MARKED.sub(fill, text)


def stale_pages() -> list[Path]:
    return [page for page in PAGES if page.exists() and regenerated(page.read_text(), page) != page.read_text()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list the pages whose tables are stale; exit 1 if any")
    args = parser.parse_args()
    if args.check:
        stale = stale_pages()
        for page in stale:
            print(f"{page.relative_to(ROOT)}: a table differs from its files; run python benchmarks/tables.py")
        sys.exit(1 if stale else 0)
    for page in PAGES:
        if page.exists():
            page.write_text(regenerated(page.read_text(), page))


if __name__ == "__main__":
    main()
