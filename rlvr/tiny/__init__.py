"""The project's own tiny reasoning model: a char-level tokenizer, a small Qwen2 and its SFT warm start.

No weights or data can be downloaded on the CPU machines this project is tested on, and RL needs a
policy that is already partly right. ``build_tiny()`` (in :mod:`rlvr.tiny.build`) makes one locally.
"""
