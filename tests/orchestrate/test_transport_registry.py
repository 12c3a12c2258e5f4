"""Pure-logic tests of the dispatcher split and the transport registry (no actors started)."""

from __future__ import annotations

import itertools

import pytest

from rlvr.orchestrate import ObjectStoreTransport, get_transport, make_transport, split_evenly


@pytest.mark.parametrize("items,parts", [(0, 2), (1, 2), (5, 2), (7, 3), (8, 4), (3, 5)])
def test_split_evenly_is_contiguous_and_balanced(items: int, parts: int) -> None:
    spans = split_evenly(items, parts)
    assert len(spans) == parts
    assert spans[0][0] == 0 and spans[-1][1] == items
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    sizes = [e - s for s, e in spans]
    assert max(sizes) - min(sizes) <= 1 and sorted(sizes, reverse=True) == sizes


def test_transport_chosen_by_device_and_name() -> None:
    assert isinstance(make_transport("cpu"), ObjectStoreTransport)
    assert type(make_transport("cuda", master_address="10.0.0.1", master_port=1)).name == "nccl"
    with pytest.raises(ValueError, match="registered"):
        make_transport("tpu")
    with pytest.raises(KeyError, match="object_store"):
        get_transport("carrier_pigeon")
