"""`rlvr.loop.train` with fake rollout, scorer, learner and transport parts: the control flow in seconds.

What is checked here is the loop's own behaviour: the order of its calls, the dynamic-sampling top-up, the
one-step-off ordering, checkpoint cadence, the stop on SIGTERM, resume, and one metrics record per step. The
real parts are covered by the integration tests (tests/loop/test_train_integration.py, test_resume.py).
"""

from __future__ import annotations

import pytest
from fakes import FakeBuild, metrics, recipe, sigterm_at

from rlvr.loop import train
from rlvr.stages import DynamicSamplingError


def kinds(calls, *names):
    return [c for c in calls if c[0] in names]


def test_one_step_calls_the_parts_in_order(tmp_path):
    build = FakeBuild()
    train(recipe(tmp_path, train={"steps": 1}), build=build)
    order = [c[0] for c in build.calls]
    # The start-up sync proves rollout == learner before the first step; then one step's phases.
    # One synchronous update on what the current weights sampled: the update's forward gives the old logprobs.
    assert order == ["publish", "push", "generate", "update", "publish", "push"]


@pytest.mark.parametrize(
    ("sections", "scored"),
    [
        ({"learner": {"updates_per_step": 2}}, True),  # the second update is off-policy
        ({"train": {"async_mode": "one_step_off", "steps": 2}}, True),  # sampled one version behind
        ({"algorithm": {"estimator": {"name": "lens"}}}, True),  # the estimator reads them
        ({"algorithm": {"modifiers": [{"name": "erc"}]}}, True),  # needs the old entropy
        ({"algorithm": {"kl_to_ref": {"coef": 0.1}}}, False),  # reference logprobs only
    ],
)
def test_the_scoring_pass_runs_only_where_the_update_cannot_give_old_logprobs(tmp_path, sections, scored):
    build = FakeBuild()
    train(recipe(tmp_path, **{"train": {"steps": 2}, **sections}), build=build)
    scores = kinds(build.calls, "score")
    assert len(scores) == 2 and all(policy is scored for _, _, policy in scores), scores


def test_every_step_logs_one_record_with_its_phases(tmp_path):
    r = recipe(tmp_path, train={"steps": 3})
    last = train(r, build=FakeBuild())
    records = metrics(r.run_dir)
    assert [m["step"] for m in records] == [1, 2, 3]
    for m in records:
        for phase in ("generate", "reward", "filter", "logprobs", "advantage", "update", "sync"):
            assert m[f"time/{phase}_s"] >= 0.0
        assert m["accuracy/mean"] == pytest.approx(0.5)  # rows r%3: all right, all wrong, one of each
        assert m["sync/max_abs_logprob_delta"] == 0.0
        assert m["learner/samples"] == 12.0
        assert m["mismatch/logprob_abs_max"] == 0.0
    assert last["accuracy/mean"] == records[-1]["accuracy/mean"]
    assert records[0]["time/startup_s"] > 0 and all("time/startup_s" not in m for m in records[1:])


def test_the_mismatch_metric_sees_the_learner_disagree_with_the_rollout(tmp_path):
    r = recipe(tmp_path, train={"steps": 1})
    train(r, build=FakeBuild(drift=0.25))
    (m,) = metrics(r.run_dir)
    assert m["mismatch/logprob_abs_max"] == pytest.approx(0.25)  # from the update's own forward


def test_the_mismatch_metric_of_an_off_policy_step_comes_from_the_scoring_pass(tmp_path):
    r = recipe(tmp_path, train={"steps": 1}, learner={"updates_per_step": 2})
    train(r, build=FakeBuild(drift=0.25))
    (m,) = metrics(r.run_dir)
    assert m["mismatch/logprob_abs_max"] == pytest.approx(0.25)


def test_dynamic_sampling_tops_up_until_the_step_is_full(tmp_path):
    ds = {"enabled": True, "mode": "drop_uniform", "max_gen_batches": 10}
    r = recipe(tmp_path, train={"steps": 2}, algorithm={"dynamic_sampling": ds})
    build = FakeBuild()
    train(r, build=build)
    # Per step: rounds of 6 prompts, each with 2 mixed groups (rows r % 3 == 2): 3 rounds fill 6 groups.
    step_calls = [c[0] for c in build.calls][2:]
    assert step_calls[:4] == ["generate", "generate", "generate", "update"]
    for m in metrics(r.run_dir):
        assert m["filter/generation_rounds"] == 3
        assert m["filter/kept_groups"] == 6
        assert m["filter/kept_accuracy_mean"] == pytest.approx(0.5)
    updates = kinds(build.calls, "update")
    assert [u[2] for u in updates] == [1, 1]


def test_dynamic_sampling_that_keeps_nothing_fails_clearly(tmp_path):
    ds = {"enabled": True, "mode": "drop_uniform", "max_gen_batches": 1}
    build = FakeBuild()
    r = recipe(tmp_path, train={"steps": 1, "prompts_per_step": 1}, algorithm={"dynamic_sampling": ds})
    with pytest.raises(DynamicSamplingError, match="kept no group in 1 generation rounds"):
        train(r, build=build)  # row 0 is all-correct: nothing to keep


def test_one_step_off_trains_each_batch_one_policy_version_behind(tmp_path):
    build = FakeBuild()
    train(recipe(tmp_path, train={"steps": 4, "async_mode": "one_step_off"}), build=build)
    gens = kinds(build.calls, "generate")
    # Step 0's batch with the initial weights, then each next batch is queued before the update of the step
    # before it, so it samples with the weights of that step's start: versions 0, 0, 1, 2.
    assert [g[1] for g in gens] == [0, 0, 1, 2]
    # The prefetch is started before the update (queued first in the rollout actors): generate, score, update.
    order = [c[0] for c in build.calls if c[0] in ("generate", "update")]
    assert order == ["generate", "generate", "update", "generate", "update", "generate", "update", "update"]


def test_synchronous_mode_trains_on_policy(tmp_path):
    build = FakeBuild()
    train(recipe(tmp_path, train={"steps": 3}), build=build)
    assert [g[1] for g in kinds(build.calls, "generate")] == [0, 1, 2]


@pytest.mark.parametrize(("every", "steps", "expected"), [(2, 5, [2, 4, 5]), (0, 3, [3]), (1, 2, [1, 2])])
def test_checkpoint_cadence(tmp_path, every, steps, expected):
    r = recipe(tmp_path, train={"steps": steps}, checkpoint={"every_steps": every})
    build = FakeBuild()
    train(r, build=build)
    assert [s for s, _ in build.parts.checkpoints.complete_checkpoints()] == expected


def test_sigterm_finishes_the_step_checkpoints_and_resume_continues(tmp_path):
    r = recipe(tmp_path, train={"steps": 5})
    first = FakeBuild(on_update=sigterm_at(1))
    train(r, build=first)
    assert [s for s, _ in first.parts.checkpoints.complete_checkpoints()] == [2]
    assert [m["step"] for m in metrics(r.run_dir)] == [1, 2]

    again = FakeBuild()
    train(r, resume="auto", build=again)
    assert [m["step"] for m in metrics(r.run_dir)] == [1, 2, 3, 4, 5]
    # The resumed run loaded the learner state of step 2 and pushed it before generating anything.
    assert again.calls[:2] == [("publish", 2), ("push", 2)]
    assert [u[1] for u in kinds(again.calls, "update")] == [2, 3, 4]
    # The data cursor continued: the resumed run's prompts follow the first run's.
    firsts = [g[2] for g in kinds(first.calls, "generate")] + [g[2] for g in kinds(again.calls, "generate")]
    assert len(set(firsts)) == len(firsts) == 5


def test_colocated_placement_frees_the_rollout_device_around_the_update(tmp_path):
    build = FakeBuild()
    train(recipe(tmp_path, train={"steps": 1}, resources={"placement": "colocated"}), build=build)
    order = [c[0] for c in build.calls]
    assert order[order.index("sleep") : order.index("wake") + 1] == ["sleep", "update", "wake"]
