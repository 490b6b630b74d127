"""benchmarks/cast_weights.py: a model folder copied with its weights cast (how MiniLM travels to a GPU)."""

import subprocess
import sys

import torch
from safetensors.torch import load_file, save_file

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "cast_weights.py"


def cast(source, target, dtype):
    return subprocess.run([sys.executable, SCRIPT, source, target, dtype], capture_output=True, text=True)


def test_weights_travel_as_float16_and_come_back_as_float32_beside_the_folders_other_files(tmp_path):
    source, small, back = tmp_path / "model", tmp_path / "float16", tmp_path / "float32"
    (source / "1_Pooling").mkdir(parents=True)
    (source / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (source / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    (source / "README.md").write_text("the model card")
    weights = {"encoder.weight": torch.randn(64, 32), "encoder.bias": torch.randn(32)}
    save_file(weights, source / "model.safetensors")

    assert cast(source, small, "float16").returncode == 0
    assert cast(small, back, "float32").returncode == 0

    travelled, restored = load_file(small / "model.safetensors"), load_file(back / "model.safetensors")
    for name, value in weights.items():
        assert travelled[name].dtype == torch.float16 and restored[name].dtype == torch.float32
        assert torch.equal(restored[name], travelled[name].float())  # float16 to float32 is exact
        torch.testing.assert_close(restored[name], value, rtol=1e-3, atol=1e-4)  # float16's rounding alone
    assert (back / "1_Pooling" / "config.json").read_text() == '{"pooling_mode_mean_tokens": true}'
    assert (back / "vocab.txt").exists() and not (back / "README.md").exists()


def test_a_folder_without_safetensors_weights_is_named_in_one_line(tmp_path):
    (tmp_path / "model").mkdir()
    result = cast(tmp_path / "model", tmp_path / "out", "float32")
    assert result.returncode != 0
    assert (
        result.stderr.strip()
        == f"error: {tmp_path / 'model' / 'model.safetensors'} missing; give a model folder saved with safetensors"
    )
    assert not (tmp_path / "out").exists()
