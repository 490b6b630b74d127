"""Candidate retrieval: a product's nearest catalog products by an approximate-nearest-neighbour index
over the pipeline's product vectors, and how many true matches it finds."""
