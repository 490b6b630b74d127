"""The modalities a product is embedded in, defined here alone: each has one file
`data/embeddings/<modality>.npz` (written by an embed_* stage) holding `variantid` and its arrays."""

# Texts encoded by a configurable encoder (embed.<modality> in params.yaml), one embed_text stage each.
TEXT_MODALITIES = ("attributes", "descriptions")
# The name vectors come ready with the archive; photos are the main photo's and the extra photos' vectors.
MODALITIES = (*TEXT_MODALITIES, "names", "photos")
# The array that stands for the whole product in each file: what retrieval searches (retrieval.blocks).
PRODUCT_VECTORS = {"attributes": "vectors", "descriptions": "vectors", "names": "vectors", "photos": "main"}
