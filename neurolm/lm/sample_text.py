"""A small English text bundled with the code, for the text side of stage 2 when no ``--text`` is given.

Written for this project (no third-party text). It is tokenized with GPT-2's BPE into a
uint16 token file in the run directory, and the run's lineage says so: the text batches of
such a run only keep GPT-2's text side exercised (a smoke test, the demo), they are no
substitute for a real text corpus (the original mixed in OpenWebText).
"""

from __future__ import annotations

DOCUMENTS: tuple[str, ...] = (
    "The brain is never quiet. Even in deep sleep, millions of neurons fire together, and the sum of "
    "their electric fields reaches the scalp as a tiny voltage that changes from one moment to the next. "
    "An electroencephalogram, or EEG, records that voltage with small metal electrodes placed on the head. "
    "Each electrode gives one channel, and a recording holds many channels side by side.",
    "Doctors read EEG recordings to find seizures, to score the stages of sleep and to check how deeply "
    "a patient is anaesthetised. Researchers use them to study attention, memory and emotion. The signal "
    "is rich but noisy: a blink, a clenched jaw or the hum of the power line can be larger than the "
    "activity of the brain itself.",
    "A language model reads text one token at a time and learns to predict the next one. If we cut an EEG "
    "recording into short patches, one second of one channel each, and give every patch a code from a "
    "learned vocabulary, the recording becomes a long sentence in a foreign language. The model can then "
    "learn to predict the code of each channel one second ahead.",
    "Rhythms are the words of this language. Alpha waves near ten cycles per second appear when the eyes "
    "close and the mind rests. Slow delta waves fill deep sleep. Fast beta activity grows when we "
    "concentrate, and sleep spindles arrive in short bursts as we drift off. A good tokenizer gives such "
    "patterns their own codes.",
    "Training such a model takes patience. The recordings come from many hospitals, in many file formats, "
    "with different electrodes and sampling rates. They must be read, cleaned, resampled and scaled the "
    "same way before any learning starts. Recordings that cannot be read are set aside with a short "
    "note that says why.",
    "The weather was mild that morning, so the team walked to the laboratory along the river. They talked "
    "about the results of the night before: the loss had fallen steadily, the accuracy on held-out "
    "recordings had risen above the simple baseline, and nothing had crashed. It was a good start.",
    "Once the model has learned the language of the brain, it can be taught to answer questions about a "
    "recording: is this a seizure, which stage of sleep is this, is the subject tired or alert? The same "
    "model answers all of them in words, because text and EEG share one vocabulary and one network.",
    "Every experiment is written down. The data it used, the version of the code, the settings and the "
    "random seed are stored next to the results, so that anyone can repeat it and get the same numbers. "
    "A run that is interrupted can continue from its last checkpoint as if nothing had happened.",
)
