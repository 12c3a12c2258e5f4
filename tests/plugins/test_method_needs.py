"""The driver asks the registry what a method needs (old entropy, a reference model) instead of its name."""

from __future__ import annotations

import dataclasses

import pytest

from rlvr.algo import register_estimator, register_loss_modifier
from rlvr.algo.registry import ESTIMATORS, LOSS_MODIFIERS
from rlvr.config import Recipe
from rlvr.stages import AlgorithmStages


@pytest.fixture(scope="module", autouse=True)
def needy_methods():
    @register_loss_modifier("test_needs_entropy", needs_old_entropy=True)
    def needs_entropy(inputs, term, *, generator=None):
        return dataclasses.replace(term)

    @register_estimator("test_needs_reference", needs_reference=True)
    def needs_reference(inp):
        return inp.broadcast(inp.rewards_B)

    yield
    for registry, name in ((LOSS_MODIFIERS, "test_needs_entropy"), (ESTIMATORS, "test_needs_reference")):
        registry._table.pop(name)


def stages(**algorithm) -> AlgorithmStages:
    return AlgorithmStages(Recipe.model_validate({"algorithm": algorithm}))


def test_erc_and_a_registered_modifier_ask_for_old_entropy():
    assert not stages().needs_old_entropy
    assert stages(erc={"low": 0.1, "high": 0.1}).needs_old_entropy
    assert stages(modifiers=[{"name": "test_needs_entropy"}]).needs_old_entropy
    # named by import path, the function carries the metadata it was registered with
    assert stages(modifiers=[{"name": f"{__name__}:_needs_entropy_by_path"}]).needs_old_entropy


def test_a_registered_estimator_asks_for_the_reference_model_without_a_kl_term():
    s = stages(estimator={"name": "test_needs_reference"})
    assert s.needs_reference and not s.kl_in_loss and not s.kl_in_reward
    assert not stages().needs_reference
    kl = stages(kl_to_ref={"coef": 0.1, "as": "reward"})
    assert kl.needs_reference and kl.kl_in_reward and not kl.kl_in_loss


@register_loss_modifier("test_needs_entropy_path", needs_old_entropy=True)
def _needs_entropy_by_path(inputs, term, *, generator=None):
    return term
