"""A shaping term for the scorer tests: reads the response length the scorer passes as `response_tokens`."""


def length_shaping(completion, *, response_tokens=None, per_token=0.001, **row):
    if response_tokens is None:
        raise ValueError("length_shaping needs response_tokens: pass response_tokens= to RewardScorer.score")
    return -per_token * int(response_tokens)
