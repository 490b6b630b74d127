"""The cross-encoder's parts: cards written as text (`serialising`), the pretrained model and its
pooling (`pretrained`), and pairs of cards tokenised once and read in batches (`batching`)."""
