"""The discrete neural-token corpus: tokenization jobs, the training reader, inspection.

Why it exists: NeuroLM re-runs the frozen VQ tokenizer in every pretraining step;
materialising the codes once (~1.8 B tokens, ~3.6 GB as uint16) turns 20 epochs
of tokenizer passes into one and gives the LLM a plain integer corpus.

Usage::

    from neurolm.corpus.run import tokenize_local
    from neurolm.corpus.tokenize import prepare_job
    job = prepare_job("stores/eeg", "runs/vq", "corpora/tueg", splits=["train", "val"])
    tokenize_local(job)                      # or: neurolm tokenize ... (Prefect flow on Dask)

    from neurolm.corpus.reader import TokenCorpus, collate_tokens
    tc = TokenCorpus.open("corpora/tueg", splits=["train"])
    s = tc[0]                                # {"codes", "ch", "time"}: int64, time-major
    for s in tc.iter_samples(shuffle=True, seed=epoch): ...

    from neurolm.corpus.torch_data import TokenIterableDataset
    DataLoader(TokenIterableDataset("corpora/tueg", splits=("train",)), batch_size=60,
               num_workers=8, collate_fn=collate_tokens)   # codes/ch/time/mask/targets [B, 1024]

Modules: ``tokenize`` (inputs checked and shards planned before any work; one
writer per shard; commit markers), ``encode`` (reader threads + device loop),
``reader`` (``TokenCorpus``), ``torch_data`` (PyTorch datasets), ``inspect``
(sizes, code usage, perplexity, lineage), ``params`` (``TokenizeParams``),
``fixtures``/``synthetic`` (small real inputs for tests and benchmarks),
``labeled`` (labeled corpora: one sample per LABELS window, ``neurolm tokenize
--labeled``; ``window_patches`` reads a sample's raw patches back).
The on-disk format lives in ``storage.token_corpus``. EEG code k is LLM id
50304 + k in NeuroLM; that mapping is the model's, the corpus stores raw codes.
"""
