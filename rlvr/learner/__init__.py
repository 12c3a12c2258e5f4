"""DeepSpeed learner: per-token logprobs/entropy, accumulated train steps, weight export, checkpoints.

Import :class:`rlvr.learner.engine.Learner` for the engine; :mod:`rlvr.learner.packing` and
:mod:`rlvr.learner.schedule` are torch-light helpers usable without DeepSpeed.
"""
