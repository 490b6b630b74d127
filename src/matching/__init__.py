"""Multimodal product matching for the Ozon E-CUP 2024 archive."""
