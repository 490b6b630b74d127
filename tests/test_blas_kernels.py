"""OpenBLAS kernels pinned: the lexical SVD gives the same bytes whichever x86-64 core type OpenBLAS
would pick by itself (matching/__init__.py pins the AVX2 kernels before numpy loads)."""

import os
import subprocess
import sys

import pytest

from matching import _has_avx2

# Imports matching before numpy, as every stage does (`python -m matching.stages.<name>`).
FIT = """
import hashlib, os
import matching
import numpy as np
from matching.encoders.lexical import fit_lexical
rng = np.random.default_rng(0)
words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(3, 9))) for _ in range(400)]
texts = [" ".join(rng.choice(words, 6)) for _ in range(3000)]
encoder = fit_lexical(texts, dim=16, ngram_min=2, ngram_max=4, max_features=5000, seed=0)
print(os.environ.get("OPENBLAS_CORETYPE", ""), hashlib.md5(encoder.encode(texts).tobytes()).hexdigest())
"""


def fit(core_type: str | None) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if core_type:
        env["OPENBLAS_CORETYPE"] = core_type
    out = subprocess.run([sys.executable, "-c", FIT], env=env, capture_output=True, text=True, check=True)
    core, digest = out.stdout.split()
    return core, digest


@pytest.mark.skipif(not _has_avx2(), reason="the pin applies to x86-64 CPUs with AVX2")
def test_default_kernels_give_the_bytes_of_another_avx2_core_type():
    default_core, default_digest = fit(None)
    assert default_core == "Haswell"
    assert fit("Zen") == ("Zen", default_digest)


def test_a_core_type_the_user_set_is_kept():
    assert fit("Haswell")[0] == "Haswell"
    assert fit("Prescott")[0] == "Prescott"
