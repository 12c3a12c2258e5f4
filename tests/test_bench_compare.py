"""The pure parts of bench/compare_trl.py: model names, the generated rlvr recipe, step statistics, the ratio,
the idle wait (with an injected load reader and clock) and the accounting of other processes' CPU.

No TRL, Ray, vLLM or DeepSpeed: the benchmark itself is run by hand (docs/performance.md).
"""

from __future__ import annotations

import math

import pytest
from bench_modules import load_bench

common = load_bench("_common")


def test_parse_models_keeps_order_and_names_the_known_ones_on_a_miss():
    assert common.parse_models(" tiny, 72M ,18m") == ["tiny", "72m", "18m"]
    with pytest.raises(ValueError, match=r"unknown 7b \(known: tiny, 18m, 72m\)"):
        common.parse_models("tiny,7b")
    with pytest.raises(ValueError, match="empty"):
        common.parse_models(" , ")


def test_random_models_have_the_advertised_sizes():
    bench = load_bench("compare_trl")
    for name, millions in (("18m", 18), ("72m", 72)):
        arch = {**common.RANDOM_ARCHS[name], "vocab_size": 320, "tie_word_embeddings": True}
        assert abs(bench.count_params(arch) / 1e6 - millions) < 0.06 * millions, name


def test_recipe_validates_and_holds_the_equal_work_settings(tmp_path):
    import yaml

    from rlvr.config import load_recipe

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(f'{{"prompt": "{i}+1", "answer": "{i + 1}"}}\n' for i in range(64)))
    raw = common.rlvr_recipe(
        name="bench-tiny",
        model_path="tiny",
        prompts_file=str(prompts),
        run_dir=str(tmp_path / "run"),
        steps=4,
        prompts_per_step=16,
        samples_per_prompt=8,
        max_new_tokens=64,
        kv_cache_memory_mb=100,
    )
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))  # as bench/compare_trl.py writes it
    recipe, warnings = load_recipe(path)
    assert not warnings, warnings
    assert recipe.train.prompts_per_step * recipe.rollout.samples_per_prompt == 128
    assert recipe.rollout.max_response_tokens == 64 and recipe.rollout.temperature == 1.0
    assert (
        recipe.learner.updates_per_step == 1 and recipe.learner.num_ranks == 1 and recipe.learner.lr == 1e-6
    )
    assert recipe.learner.lr_schedule.warmup_updates == 0
    assert recipe.algorithm.kl_to_ref is None and recipe.model.dtype == "float32"
    assert recipe.eval.every_steps == 0 and not recipe.eval.at_start and recipe.checkpoint.every_steps == 0
    assert recipe.data.train.shuffle is False and recipe.data.eval is None


def test_kv_cache_holds_every_sequence_of_a_step():
    arch = common.RANDOM_ARCHS["72m"]  # 6 layers x 2 kv heads x 128 dims x 2 (k, v) x 4 bytes = 12 KiB/token
    assert common.kv_cache_mb(arch, 128, 112, headroom=1.0) == 168
    assert common.kv_cache_mb(arch, 1, 1) == 64  # never below rlvr's default


def test_step_stats_drop_the_first_step_and_keep_something_for_one_step():
    assert common.step_stats([9.0, 2.0, 4.0, 3.0]) == {"median": 3.0, "min": 2.0, "max": 4.0, "n": 3}
    assert common.step_stats([5.0]) == {"median": 5.0, "min": 5.0, "max": 5.0, "n": 1}
    assert math.isnan(common.step_stats([])["median"])
    phases = common.phase_stats([{"gen": 9.0, "upd": 1.0}, {"gen": 2.0, "upd": 1.5}, {"gen": 4.0}])
    assert phases["gen"]["median"] == 3.0 and phases["upd"] == {"median": 1.5, "min": 1.5, "max": 1.5, "n": 1}


def test_rlvr_steps_read_every_time_phase_and_skip_records_without_a_step():
    records = [
        {"eval/accuracy/mean": 0.2},
        {
            "time/step_s": 3.0,
            "time/generate_s": 1.0,
            "time/update_s": 1.5,
            "time/startup_s": 21.0,
            "response_length/mean": 20.5,
        },
        {"time/step_s": 2.0, "time/generate_s": 0.8, "time/sync_s": 0.1, "response_length/mean": 10.0},
    ]
    steps = common.rlvr_steps(records, samples_per_step=128)
    assert steps == [  # start-up is not a phase of the step
        {"step_s": 3.0, "tokens": 2624.0, "phases": {"generate": 1.0, "update": 1.5}, "startup_s": 21.0},
        {"step_s": 2.0, "tokens": 1280.0, "phases": {"generate": 0.8, "sync": 0.1}},
    ]


def test_ratio_is_nan_without_a_positive_denominator():
    assert common.ratio(1.5, 3.0) == 0.5
    assert math.isnan(common.ratio(1.0, 0.0))
    assert math.isnan(common.ratio(float("nan"), 2.0))


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_wait_for_idle_returns_when_the_load_drops():
    t = FakeTime()
    loads = iter([3.0, 2.0, 0.3])
    got = common.wait_for_idle(lambda: next(loads), 0.5, 60, poll_s=5, sleep=t.sleep, clock=t.clock)
    assert got == {"idle": True, "waited_s": 10.0, "load": 0.3}
    assert t.sleeps == [5, 5]


def test_wait_for_idle_gives_up_at_the_max_wait_and_says_busy():
    t = FakeTime()
    got = common.wait_for_idle(lambda: 4.0, 0.5, 12, poll_s=5, sleep=t.sleep, clock=t.clock)
    assert got == {"idle": False, "waited_s": 12.0, "load": 4.0}
    assert t.sleeps == [5, 5, 2]  # the last sleep ends exactly at the max wait


def test_other_cpu_excludes_ours_counts_new_and_reused_pids_from_zero_and_follows_renamed_ones():
    before = {
        1: ("bench", 0.0, 10.0),
        2: ("ray", 0.0, 5.0),
        3: ("ray::Worker", 7.0, 100.0),
        4: ("old", 1.0, 50.0),
    }
    after = {
        1: ("bench", 0.0, 30.0),  # ours
        2: ("ray", 0.0, 9.0),  # ours
        3: ("ray::Worker.generate", 7.0, 101.5),  # same process, retitled by Ray: 1.5 s
        4: ("new", 9.0, 2.0),  # pid reused by a process started in between: 2 s
        5: ("make", 9.5, 0.5),  # new: 0.5 s
    }
    got = common.other_cpu(before, after, ours={1, 2}, top=2)
    assert got["cpu_s"] == pytest.approx(1.5 + 2.0 + 0.5)
    assert got["top"] == [
        {"pid": 4, "name": "new", "cpu_s": 2.0},
        {"pid": 3, "name": "ray::Worker.generate", "cpu_s": 1.5},
    ]
