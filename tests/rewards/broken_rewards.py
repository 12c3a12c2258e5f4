"""Rewards that break the contract in one way each, loaded by file path in the contract tests."""

from __future__ import annotations


def wrong_type(completion, *, answer, **row):
    return "1.0"


def returns_bool(completion, *, answer, **row):
    return True


def returns_list(completion, *, answer, **row):
    return [1.0, 0.0]


def raises(completion, *, answer, **row):
    raise ValueError("boom in user code")


def nan(completion, *, answer, **row):
    return float("nan")


def inf(completion, *, answer, **row):
    return float("-inf")


def needs_field(completion, *, answer, difficulty, **row):
    return 1.0


def _make_closure():
    def inner(completion, *, answer, **row):
        return 1.0

    return inner


closure = _make_closure()
