"""The matchers' names (and catalog matching's decision rules), defined here alone and imported everywhere else.

A matcher `<name>` is a `train@<name>` stage (`stages/train_<name>.py`), its code
(`matchers/<name>.py`), its knobs (`conf/matcher/<name>.yaml`, the `<name>` section of params.yaml,
typed in `config.py`) and a `conf/submit/<name>.yaml`; docs/development.md lists every place.
"""

LIGHTGBM = "lightgbm"
SIAMESE = "siamese"
PAIRWISE = "pairwise"
LIGHTAUTOML = "lightautoml"
CROSS_ENCODER = "cross_encoder"
# Every matcher a `train@<name>` stage can run: names reach a shell command in dvc.yaml, so only these pass.
MATCHERS = (LIGHTGBM, SIAMESE, PAIRWISE, LIGHTAUTOML, CROSS_ENCODER)
# The torch networks over product vectors (matchers/networks.py is their shared body).
NETWORKS = (SIAMESE, PAIRWISE)
# Matchers whose saved models score new pairs; LightAutoML keeps only pickles, which are never loaded.
SAVED_MATCHERS = (LIGHTGBM, *NETWORKS, CROSS_ENCODER)
# The stacked (or rank-averaged) matchers' scores: what `ensemble` fits and saves under this name.
ENSEMBLE = "ensemble"
# train.submit: the ensemble if it beats the best single matcher out-of-fold, else that matcher.
AUTO = "auto"
# How matching-find decides among a query's candidates (`retrieval.decision`, matching.retrieval.decisions):
# every candidate at or above the threshold, or the query's likeliest candidate only.
DECISION_RULES = ("threshold", "best")
# retrieval.decision: a rule, or auto (the one with the higher out-of-fold F1).
DECISIONS = (AUTO, *DECISION_RULES)
