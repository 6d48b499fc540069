"""The discrete neural-token corpus: tokenization jobs, the training reader, inspection.

Modules: ``tokenize`` (plan shards, run the frozen tokenizer, write and commit
shards), ``reader`` (``TokenCorpus``), ``torch_data`` (PyTorch datasets),
``inspect`` (corpus summary). The on-disk format lives in ``storage.token_corpus``.
"""
