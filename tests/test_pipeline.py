"""The whole DAG through DVC on a tiny demo, in a temporary copy of the repository."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import make_repo, run

pytestmark = pytest.mark.slow
EXP_SHOW_KEEP = "Experiment|competition_metric|best_f1|lightgbm.num_leaves"  # as README gives it


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """This project's pipeline shrunk to a tiny demo in a git + DVC repository, already run once."""
    root = make_repo(tmp_path_factory.mktemp("repo"))
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "baseline"], root)
    return root


def test_repro_leaves_every_declared_output_and_learns(repo):
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    outs = [out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]
    listed = run(["dvc", "stage", "list", "--name-only"], repo).stdout.split()
    assert sorted(lock["stages"]) == sorted(listed) and "train@siamese" in listed
    assert outs and all((repo / path).exists() for path in outs)
    evaluate = json.loads((repo / "metrics" / "evaluate" / "metrics.json").read_text())
    every_figure = json.loads((repo / "metrics" / "matchers.json").read_text())[evaluate["model"]]
    assert evaluate["competition_metric"] == every_figure["competition_metric"]
    assert evaluate["competition_metric"] > every_figure["positive_share"] + 0.25
    submission = pd.read_csv(repo / "data" / "submission.csv")
    test = pd.read_parquet(repo / "data" / "prepared" / "test_pairs.parquet")
    assert submission[["variantid1", "variantid2"]].equals(test[["variantid1", "variantid2"]])
    assert submission.target.between(0, 1).all() and submission.target.nunique() > 2
    assert "metrics/evaluate/metrics.json" in run(["git", "ls-files", "metrics"], repo).stdout  # kept in git
    # dvclive's plot data: a light precision-recall curve, the calibration bins, a bar per category.
    sklearn_plots = repo / "metrics" / "evaluate" / "plots" / "sklearn"
    curve = json.loads((sklearn_plots / "precision_recall.json").read_text())["precision_recall"]
    assert 10 < len(curve) <= 500 and {"precision", "recall", "threshold"} <= set(curve[0])
    assert len(json.loads((sklearn_plots / "calibration.json").read_text())["calibration"]) <= 10
    assert (repo / "metrics" / "evaluate" / "plots" / "images" / "confusion.png").stat().st_size > 0
    # Retrieval: the index finds most of exact search's neighbours, and more known matches at a larger k.
    retrieval = json.loads((repo / "metrics" / "retrieval.json").read_text())
    assert retrieval["index_recall_at_20"] >= 0.9 and retrieval["queries"] > 100
    assert 0.2 < retrieval["recall_at_1"] <= retrieval["recall_at_20"] <= retrieval["recall_at_50"]


def test_repro_again_runs_nothing(repo):
    assert "didn't change, skipping" in run(["dvc", "repro"], repo).stdout
    assert run(["dvc", "status"], repo).stdout.strip().startswith("Data and pipelines are up to date")


def test_the_score_command_on_the_test_pairs_gives_the_pipelines_submission(repo, tmp_path):
    command = ["matching-score", "data/demo/test.parquet", "--products", "data/demo"]
    result = run([*command, "--output", str(tmp_path / "scored.csv")], repo)
    chosen = json.loads((repo / "metrics" / "ensemble.json").read_text())["auto_choice"]
    assert f"pairs scored by {chosen} " in result.stdout
    scored, submission = pd.read_csv(tmp_path / "scored.csv"), pd.read_csv(repo / "data" / "submission.csv")
    assert scored[["variantid1", "variantid2"]].equals(submission[["variantid1", "variantid2"]])
    np.testing.assert_allclose(scored.target, submission.target, rtol=0, atol=1e-6)
    # A pair's score does not depend on the pairs that come with it: any subset gets its rows of the whole.
    pd.read_parquet(repo / "data" / "demo" / "test.parquet").iloc[3::7].to_csv(tmp_path / "part.csv", index=False)
    run([*command[:1], str(tmp_path / "part.csv"), *command[2:], "--output", str(tmp_path / "part_scored.csv")], repo)
    part = pd.read_csv(tmp_path / "part_scored.csv")
    np.testing.assert_allclose(part.target, scored.target.iloc[3::7], rtol=0, atol=1e-6)
    assert "--products" in run(["python", "-m", "matching.scoring", "--help"], repo).stdout
    # Bad input: one line naming the file, the column and the value, exit status 2, no output written.
    pairs = pd.read_parquet(repo / "data" / "demo" / "test.parquet").head(5)
    pairs.loc[3, "variantid2"] = 999
    pairs.to_csv(tmp_path / "unknown.csv", index=False)
    bad = run(
        [*command[:1], str(tmp_path / "unknown.csv"), *command[2:], "--output", str(tmp_path / "out.csv")],
        repo,
        check=False,
    )
    assert bad.returncode == 2 and not (tmp_path / "out.csv").exists()
    assert bad.stderr.strip().count("\n") == 0
    assert "unknown.csv: column variantid2 names product 999 at row 3" in bad.stderr


def test_the_find_command_ranks_and_decides_each_querys_candidates_whichever_queries_come_with_it(repo, tmp_path):
    train = pd.read_parquet(repo / "data" / "prepared" / "train_pairs.parquet")
    queries = train.loc[train.target == 1, "variantid1"].drop_duplicates().head(30)
    pd.DataFrame({"variantid": queries}).to_csv(tmp_path / "queries.csv", index=False)
    run(["matching-find", str(tmp_path / "queries.csv"), "--k", "5", "--output", str(tmp_path / "found.csv")], repo)
    found = pd.read_csv(tmp_path / "found.csv")
    assert found.columns.tolist() == [
        "query_id",
        "candidate_id",
        "rank",
        "ann_score",
        "match_probability",
        "predicted_match",
    ]
    assert set(found.query_id) == set(queries) and not (found.query_id == found.candidate_id).any()
    assert all(ranks == [1, 2, 3, 4, 5] for ranks in found.groupby("query_id")["rank"].apply(list))
    assert (found.groupby("query_id").match_probability.diff().dropna() <= 0).all()  # ranked by probability
    # The decision is the rule and threshold train_candidates chose on its calibration split.
    chosen = json.loads((repo / "metrics" / "catalog_matching.json").read_text())
    decision = json.loads((repo / "data" / "candidate_model" / "decision.json").read_text())
    assert decision["decided_on"] == "calibration" and decision["rule"] == chosen["catalog_rule"]
    assert decision["threshold"] == pytest.approx(chosen["catalog_threshold"], abs=1e-6)
    assert decision["decision_figures"][decision["rule"]]["f1"] == pytest.approx(chosen["catalog_f1"], abs=1e-6)
    # ...by a model fitted with retrieval.booster over lightgbm's parameters.
    booster = yaml.safe_load((repo / "params.yaml").read_text())["retrieval"]["booster"]
    model_text = (repo / "data" / "candidate_model" / "boosters" / "fold_0.txt").read_text()
    assert booster and all(f"[{key}: {value:g}]" in model_text for key, value in booster.items())
    predicted = found[found.predicted_match]
    assert (predicted.match_probability >= chosen["catalog_threshold"] - 1e-6).all() and len(predicted) > 10
    if chosen["catalog_rule"] == "best":
        assert (predicted["rank"] == 1).all()
    # A query's matches do not depend on the queries asked with it: a subset gets its rows of the whole.
    subset = queries.iloc[::7]
    pd.DataFrame({"variantid": subset}).to_csv(tmp_path / "subset.csv", index=False)
    run(["matching-find", str(tmp_path / "subset.csv"), "--k", "5", "--output", str(tmp_path / "part.csv")], repo)
    part = pd.read_csv(tmp_path / "part.csv")
    whole = found[found.query_id.isin(subset)].reset_index(drop=True)
    assert part[["query_id", "candidate_id", "rank", "predicted_match"]].equals(
        whole[["query_id", "candidate_id", "rank", "predicted_match"]]
    )
    np.testing.assert_allclose(part.match_probability, whole.match_probability, rtol=0, atol=1e-6)
    # More candidates than the catalog has: at most every other catalog product, no allocation of k rows.
    catalog = len(np.load(repo / "data" / "retrieval" / "ids.npy"))
    pd.DataFrame({"variantid": queries.head(2)}).to_csv(tmp_path / "two.csv", index=False)
    run(["matching-find", str(tmp_path / "two.csv"), "--k", str(10**9), "--output", str(tmp_path / "all.csv")], repo)
    counts = pd.read_csv(tmp_path / "all.csv").groupby("query_id").size()
    assert len(counts) == 2 and (counts > 5).all() and (counts <= catalog - 1).all()
    # A query the catalog lacks: one line naming it, exit status 2, nothing written.
    pd.DataFrame({"variantid": [int(queries.iloc[0]), 999]}).to_csv(tmp_path / "unknown.csv", index=False)
    bad = run(
        ["matching-find", str(tmp_path / "unknown.csv"), "--output", str(tmp_path / "out.csv")], repo, check=False
    )
    assert bad.returncode == 2 and not (tmp_path / "out.csv").exists()
    assert bad.stderr.strip().count("\n") == 0 and "unknown.csv: product 999 is not in the catalog" in bad.stderr


def write_cards(archive, ids, folder, id_shift=0):
    """The archive's product files cut to `ids`, each id moved by `id_shift`: cards in the archive's format."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    folder.mkdir()
    for name in ("attributes", "text_and_bert", "resnet"):
        table = pq.read_table(archive / f"{name}.parquet")
        table = table.filter(pc.is_in(table["variantid"], pa.array(ids)))
        shifted = pc.add(table["variantid"], pa.scalar(id_shift, table["variantid"].type))
        table = table.set_column(table.schema.get_field_index("variantid"), "variantid", shifted)
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


def test_new_cards_find_their_catalog_duplicates_as_catalog_queries_do(repo, tmp_path):
    train = pd.read_parquet(repo / "data" / "prepared" / "train_pairs.parquet")
    queries = train.loc[train.target == 1, "variantid1"].drop_duplicates().head(20).to_numpy()
    pd.DataFrame({"variantid": queries}).to_csv(tmp_path / "queries.csv", index=False)
    find = ["matching-find", "--k", "5", "--output"]
    run([*find, str(tmp_path / "by_id.csv"), str(tmp_path / "queries.csv")], repo)
    # Cards of catalog products, as the archive has them: what the catalog queries found, scored alike.
    same = write_cards(repo / "data" / "demo", queries, tmp_path / "same")
    run([*find, str(tmp_path / "same.csv"), "--cards", str(same)], repo)
    by_id, by_card = pd.read_csv(tmp_path / "by_id.csv"), pd.read_csv(tmp_path / "same.csv")
    assert by_card[["query_id", "candidate_id", "rank"]].equals(by_id[["query_id", "candidate_id", "rank"]])
    np.testing.assert_allclose(by_card.match_probability, by_id.match_probability, atol=1e-6)
    # The same cards under new ids: each one's nearest product and likeliest match is the product it
    # copies, and the candidate model's decision keeps it.
    shift = 10**12
    copies = write_cards(repo / "data" / "demo", queries, tmp_path / "copies", id_shift=shift)
    run([*find, str(tmp_path / "copies.csv"), "--cards", str(copies)], repo)
    found = pd.read_csv(tmp_path / "copies.csv")
    assert sorted(found.query_id.unique()) == sorted(queries + shift)
    best = found[found["rank"] == 1]
    assert (best.candidate_id == best.query_id - shift).all() and best.predicted_match.all()
    # A folder without cards: one line naming it, exit status 2, nothing written.
    (tmp_path / "empty").mkdir()
    bad = run([*find, str(tmp_path / "out.csv"), "--cards", str(tmp_path / "empty")], repo, check=False)
    assert bad.returncode == 2 and not (tmp_path / "out.csv").exists()
    assert bad.stderr.strip().count("\n") == 0 and "empty: no attributes.parquet" in bad.stderr


def test_experiments_change_params_and_compare_metrics(repo):
    run(["dvc", "exp", "run", "-S", "lightgbm.num_leaves=7"], repo)
    assert yaml.safe_load((repo / "params.yaml").read_text())["lightgbm"]["num_leaves"] == 7
    diff = json.loads(run(["dvc", "metrics", "diff", "HEAD", "--json"], repo).stdout)
    assert "competition_metric" in diff["metrics/evaluate/metrics.json"]
    run(["dvc", "exp", "run", "--queue", "-S", "lightgbm.num_leaves=3,15"], repo)
    run(["dvc", "exp", "run", "--run-all"], repo)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    leaves = set()
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                data = rev.get("data") or {}
                params = data.get("params", {}).get("params.yaml", {}).get("data", {})
                metrics = data.get("metrics", {}).get("metrics/evaluate/metrics.json", {}).get("data", {})
                if "competition_metric" in metrics:
                    leaves.add(params["lightgbm"]["num_leaves"])
    assert {3, 7, 15} <= leaves
    # README's filter shows the headline columns, unprefixed: one metrics file, a narrow table.
    shown = run(["dvc", "exp", "show", "--csv", "--drop", ".*", "--keep", EXP_SHOW_KEEP], repo).stdout
    header = shown.splitlines()[0].split(",")
    assert {"Experiment", "competition_metric", "best_f1", "best_f1_threshold", "lightgbm.num_leaves"} <= set(header)
    assert len(shown.splitlines()) >= 5  # the workspace, the baseline and the experiments
    unfiltered = run(["dvc", "exp", "show", "--csv"], repo).stdout.splitlines()[0].split(",")
    assert "matchers.lightgbm.competition_metric" in unfiltered
    assert not [c for c in unfiltered if ":" in c or c.endswith(".pr_auc") and not c.startswith("matchers.")]


def test_params_back_to_an_earlier_run_restore_the_trained_matchers_from_the_run_cache(repo):
    # Run A is the baseline; the experiments above ran B (num_leaves 7) and others; back to A, nothing retrains.
    run(["git", "checkout", "--", "params.yaml"], repo)
    run(["dvc", "exp", "run", "-S", "lightgbm.num_leaves=7"], repo)  # B again: restored, not retrained
    run(["git", "checkout", "--", "params.yaml"], repo)
    result = run(["dvc", "repro"], repo)
    assert "Stage 'train@lightgbm' is cached - skipping run, checking out outputs" in result.stdout, result.stdout
    assert "Running stage 'train@" not in result.stdout, result.stdout


def test_submit_switch_reuses_trained_matchers(repo):
    result = run(["dvc", "exp", "run", "-S", "submit=siamese"], repo)
    assert "Stage 'train@siamese' didn't change, skipping" in result.stdout
    assert json.loads((repo / "metrics" / "evaluate" / "metrics.json").read_text())["model"] == "siamese"
    table = json.loads((repo / "metrics" / "matchers.json").read_text())
    assert set(table) == {"lightgbm", "siamese", "pairwise", "ensemble"}
    run(["git", "checkout", "--", "params.yaml"], repo)


def test_a_matcher_name_that_is_not_a_matcher_stops_the_dag_before_any_stage(repo):
    overrides = 'train.matchers=[lightgbm,"lightgbm; touch pwned"]'
    result = run(["dvc", "exp", "run", "-S", overrides], repo, check=False)
    assert result.returncode != 0
    assert "train.matchers is 'lightgbm; touch pwned'; use one of lightgbm" in result.stdout + result.stderr
    assert not (repo / "pwned").exists()
    assert "Running stage 'check_params'" in result.stdout and "Running stage 'train" not in result.stdout
    run(["git", "checkout", "--", "params.yaml"], repo)


def test_ozon_without_the_archive_says_what_is_missing(repo):
    result = run(["dvc", "exp", "run", "-S", "data=ozon"], repo, check=False)
    assert result.returncode != 0
    assert "missing train.parquet, test.parquet, attributes.parquet" in result.stdout + result.stderr
    assert "error: " in result.stderr and "data/raw: missing" in result.stderr  # check_params, before any stage
    assert (repo / "data" / "submission.csv").exists() and (repo / "metrics" / "data_report.json").exists()
    # The documented way back from a failed experiment, no remote needed: the committed params, lock and
    # metrics, then dvc repro (outputs from the cache or rerun; nothing deleted).
    run(["git", "checkout", "--", "params.yaml", "dvc.lock", "metrics"], repo)
    run(["dvc", "repro"], repo)
    assert run(["dvc", "status"], repo).stdout.strip().startswith("Data and pipelines are up to date")
