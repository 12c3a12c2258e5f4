"""Pure-logic tests of the dispatcher split and the transport registry (no actors started)."""

from __future__ import annotations

import itertools

import pytest

from rlvr.orchestrate import (
    CollectiveTransport,
    ObjectStoreTransport,
    get_transport,
    make_transport,
    split_evenly,
)


@pytest.mark.parametrize("items,parts", [(0, 2), (1, 2), (5, 2), (7, 3), (8, 4), (3, 5)])
def test_split_evenly_is_contiguous_and_balanced(items: int, parts: int) -> None:
    spans = split_evenly(items, parts)
    assert len(spans) == parts
    assert spans[0][0] == 0 and spans[-1][1] == items
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    sizes = [e - s for s, e in spans]
    assert max(sizes) - min(sizes) <= 1 and sorted(sizes, reverse=True) == sizes


def test_transport_chosen_by_device_and_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process CPU engines (the CPU default)
    assert isinstance(make_transport("cpu"), ObjectStoreTransport)
    cuda = make_transport("cuda")  # builds without any address: the learner picks it when it connects
    assert isinstance(cuda, CollectiveTransport) and cuda.device == "cuda"
    assert make_transport("cpu", "collective", bucket_bytes=1024).bucket_bytes == 1024
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")  # the object store cannot reach these
    assert isinstance(make_transport("cpu"), CollectiveTransport)
    assert isinstance(make_transport("cpu", "object_store"), ObjectStoreTransport)
    with pytest.raises(ValueError, match="registered"):
        make_transport("tpu")
    with pytest.raises(KeyError, match="object_store"):
        get_transport("carrier_pigeon")
