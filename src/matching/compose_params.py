"""Write params.yaml as the Hydra composition of conf/ (what `dvc exp run` does before each run).

`dvc repro` never composes, so after editing conf/ run `python -m matching.compose_params`
(or `make params`) and commit both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from matching import config, paths
from matching.io import atomic_path
from matching.stage import run_stage


def composed(overrides: list[str], conf_dir: Path = Path("conf")) -> dict:
    with initialize_config_dir(config_dir=str(conf_dir.resolve()), version_base=None):
        params = OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)
    assert isinstance(params, dict)  # conf/config.yaml is a mapping
    return params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=ozon lightgbm.num_leaves=63")
    args = parser.parse_args(argv)
    layout = paths.project()
    params = composed(args.overrides, layout.root / "conf")
    config.from_dict(params)  # refuse a composition no stage would accept
    with atomic_path(layout.params) as tmp:
        tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(params)))
    print(f"wrote {layout.params} from conf/ {' '.join(args.overrides)}")


if __name__ == "__main__":
    run_stage(main)
