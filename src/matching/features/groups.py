"""The pair feature groups' names, defined here alone: each group is one module `features/<group>.py`
whose columns carry the group's prefix; `features.groups` in params.yaml picks among them."""

# Groups computed from a pair's two products alone, in the order their columns come.
PAIR_GROUPS = ("embeddings", "category", "attributes", "text", "codes", "photos")
# Ranks a pair's similarities among its products' other candidates: it reads the groups above, so it comes last.
NEIGHBOURS = "neighbours"
FEATURE_GROUPS = (*PAIR_GROUPS, NEIGHBOURS)
# Each group's columns start with its prefix, so a group can be switched off or ablated by it;
# `neighbours` names its columns nbr_<ranked column>.
PREFIX = dict(zip(FEATURE_GROUPS, ("emb_", "cat_", "attr_", "text_", "code_", "photo_", "nbr_")))
