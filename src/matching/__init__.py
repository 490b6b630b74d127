"""Multimodal product matching for the Ozon E-CUP 2024 archive."""

import os

# numpy's BLAS and LAPACK (OpenBLAS: the lexical encoder's SVD, photo pooling) run on one thread in every
# stage, whatever the machine or OMP_NUM_THREADS says: a multi-threaded OpenBLAS gives other low-order bits
# with another thread count, so outputs and dvc.lock would change from machine to machine. Set here, before
# any stage imports numpy; that work is small. Torch (its own MKL), LightGBM and the TF-IDF worker processes
# keep their threads; tests/test_trust.py checks their outputs on one core against two.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
