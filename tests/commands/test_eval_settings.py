"""`rlvr eval` arguments and settings precedence (flag > checkpoint recipe > default), without loading a model."""

from __future__ import annotations

import importlib.util

import pytest

import rlvr.config.data
from rlvr.cli import is_user_error, main
from rlvr.commands import eval as eval_cmd
from rlvr.commands.eval import EvalError, dataset_name, resolve_settings, spec_name
from rlvr.eval.checkpoints import resolve_checkpoint

# The dataset config and loaders are being finished in parallel (rlvr/config/data.py, rlvr/data/loaders.py);
# these tests start running as soon as they exist.
needs_data = pytest.mark.skipif(
    not hasattr(rlvr.config.data, "DatasetConfig") or importlib.util.find_spec("rlvr.data.loaders") is None,
    reason="rlvr.config.data.DatasetConfig / rlvr.data.loaders not available yet",
)

RECIPE = {
    "name": "r",
    "seed": 7,
    "rollout": {"max_response_tokens": 48},
    "eval": {"samples_per_prompt": 4, "temperature": 0.6, "top_p": 0.9, "max_prompts": 10},
    "rewards": {"terms": [{"fn": "math"}], "sandbox": {"workers": 1}},
}


def test_flags_default_to_none_so_the_recipe_decides(parse_args):
    args = parse_args(eval_cmd, ["ck"])
    assert args.checkpoint == "ck"
    for name in ("data", "format", "samples_per_prompt", "temperature", "top_p", "max_tokens", "limit"):
        assert getattr(args, name) is None, name
    assert args.seed is None and args.out is None and args.reward is None


def test_flag_parsing_and_validation(parse_args):
    args = parse_args(
        eval_cmd, ["ck", "-k", "4", "--temperature", "0.7", "--reward", "math", "--reward", "format"]
    )
    assert args.samples_per_prompt == 4 and args.temperature == 0.7
    assert args.reward == ["math", "format"]
    for bad in (
        ["--samples-per-prompt", "0"],
        ["--temperature", "-1"],
        ["--limit", "x"],
        ["--device", "tpu"],
    ):
        with pytest.raises(SystemExit):
            parse_args(eval_cmd, ["ck", *bad])


def test_plain_model_without_data_is_a_user_error(tmp_path, hf_dir, parse_args):
    ckpt = resolve_checkpoint(hf_dir(tmp_path / "m"))
    with pytest.raises(EvalError, match="--data") as info:
        resolve_settings(parse_args(eval_cmd, [str(ckpt.path)]), ckpt, None)
    assert is_user_error(info.value)


def _with_recipe(tmp_path, checkpoint):
    ckpt = resolve_checkpoint(checkpoint(tmp_path / "ck", 3, recipe=RECIPE))
    return ckpt, eval_cmd.load_checkpoint_recipe(ckpt)


@needs_data
def test_recipe_supplies_every_default(tmp_path, checkpoint, parse_args):
    ckpt, recipe = _with_recipe(tmp_path, checkpoint)
    s = resolve_settings(parse_args(eval_cmd, [str(ckpt.path)]), ckpt, recipe)
    assert s.data == recipe.data.eval  # the held-out split the run evaluated on
    assert (s.samples_per_prompt, s.temperature, s.top_p) == (4, 0.6, 0.9)
    assert s.max_tokens == 48 and s.seed == 7 and s.limit == 10
    assert [t.fn for t in s.rewards.terms] == ["math"]
    assert s.out_dir == ckpt.path / f"eval-{dataset_name(recipe.data.eval)}"


@needs_data
def test_flags_override_the_recipe(tmp_path, checkpoint, parse_args):
    ckpt, recipe = _with_recipe(tmp_path, checkpoint)
    argv = [str(ckpt.path), "-k", "2", "--temperature", "0", "--top-p", "1", "--max-tokens", "9"]
    argv += ["--limit", "3", "--seed", "1", "--out", str(tmp_path / "o"), "--reward", "gsm8k"]
    s = resolve_settings(parse_args(eval_cmd, argv), ckpt, recipe)
    assert (s.samples_per_prompt, s.temperature, s.top_p, s.max_tokens, s.limit, s.seed) == (
        2,
        0.0,
        1.0,
        9,
        3,
        1,
    )
    assert s.out_dir == tmp_path / "o"
    assert [t.fn for t in s.rewards.terms] == ["gsm8k"]
    assert s.rewards.sandbox.workers == 1  # sandbox limits still come from the recipe


@needs_data
def test_explicit_data_drops_the_recipe_prompt_cap(tmp_path, checkpoint, parse_args):
    ckpt, recipe = _with_recipe(tmp_path, checkpoint)
    s = resolve_settings(
        parse_args(eval_cmd, [str(ckpt.path), "--data", "/x/gsm8k_test.jsonl"]), ckpt, recipe
    )
    assert s.limit is None
    assert str(s.data.source) == "/x/gsm8k_test.jsonl"
    assert s.out_dir.name.startswith("eval-gsm8k_test")


def test_spec_names_are_directory_safe():
    assert spec_name("data/test.jsonl") == "test"
    assert spec_name("openai/gsm8k") == "openai_gsm8k"
    assert spec_name("synthetic") == "synthetic"
    assert spec_name("../..") == "data"


def test_command_modules_import_nothing_heavy():
    """`rlvr --help` imports every command module, so none may pull in torch, vLLM, Ray or transformers."""
    import subprocess
    import sys

    code = (
        "import sys, rlvr.commands.eval, rlvr.commands.export, rlvr.commands.plot\n"
        "heavy = {'torch', 'vllm', 'ray', 'transformers', 'matplotlib', 'deepspeed'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "{tmp}/missing", "--data", "synthetic"], "does not exist"),
        (["export", "{tmp}/missing", "{tmp}/out"], "does not exist"),
        (["plot", "{tmp}"], "metrics.jsonl"),
    ],
)
def test_cli_reports_user_errors_without_traceback(tmp_path, capsys, argv, message):
    """The three commands are wired into `rlvr`, and their errors print as messages with exit code 2."""
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@needs_data
def test_synthetic_data_defaults_to_its_held_out_split(tmp_path, hf_dir, parse_args):
    ckpt = resolve_checkpoint(hf_dir(tmp_path / "m"))
    s = resolve_settings(parse_args(eval_cmd, [str(ckpt.path), "--data", "synthetic"]), ckpt, None)
    assert (s.data.source, s.data.split, s.data.format) == ("synthetic", "test", "synthetic")
    assert s.out_dir == ckpt.path / "eval-synthetic-test"


@needs_data
def test_explicit_data_keeps_the_recipe_prompt_format(tmp_path, checkpoint, parse_args):
    recipe = {
        **RECIPE,
        "data": {"eval": {"split": "test", "template": "plain", "system_prompt": "Be brief."}},
    }
    ckpt = resolve_checkpoint(checkpoint(tmp_path / "ck", 1, recipe=recipe))
    args = parse_args(eval_cmd, [str(ckpt.path), "--data", "x.jsonl", "--format", "generic"])
    with pytest.raises(EvalError, match="prompt_key"):  # the data config's own rule, as a user error
        resolve_settings(args, ckpt, eval_cmd.load_checkpoint_recipe(ckpt))
    args = parse_args(eval_cmd, [str(ckpt.path), "--data", "x.jsonl", "--format", "gsm8k"])
    s = resolve_settings(args, ckpt, eval_cmd.load_checkpoint_recipe(ckpt))
    assert (s.data.format, s.data.template, s.data.system_prompt) == ("gsm8k", "plain", "Be brief.")


@needs_data
def test_bad_flag_values_are_user_errors(tmp_path, checkpoint, parse_args):
    ckpt, recipe = _with_recipe(tmp_path, checkpoint)
    for argv in (["--format", "Not-A-Format"], ["--reward", "Not A Reward"]):
        with pytest.raises(EvalError):
            resolve_settings(parse_args(eval_cmd, [str(ckpt.path), *argv]), ckpt, recipe)
    s = resolve_settings(parse_args(eval_cmd, [str(ckpt.path), "--split", "train"]), ckpt, recipe)
    assert s.data.split == "train" and s.data.source == recipe.data.eval.source


@needs_data
@pytest.mark.parametrize(("fmt", "reward"), [("gsm8k", "gsm8k"), ("math", "math"), ("aime", "math")])
def test_plain_model_reward_follows_the_data_format(tmp_path, hf_dir, parse_args, fmt, reward):
    ckpt = resolve_checkpoint(hf_dir(tmp_path / "m"))
    args = parse_args(eval_cmd, [str(ckpt.path), "--data", "t.jsonl", "--format", fmt])
    s = resolve_settings(args, ckpt, None)
    assert [t.fn for t in s.rewards.terms] == [reward]
    args = parse_args(eval_cmd, [str(ckpt.path), "--data", "t.jsonl", "--format", fmt, "--reward", "format"])
    assert [t.fn for t in resolve_settings(args, ckpt, None).rewards.terms] == ["format"]


@needs_data
def test_recipe_rewards_hold_for_its_own_format_only(tmp_path, checkpoint, parse_args):
    recipe = {
        **RECIPE,
        "data": {"train": {"format": "gsm8k"}, "eval": {"format": "gsm8k", "split": "test"}},
        "rewards": {"terms": [{"fn": "math", "kwargs": {"style": "auto"}}]},
    }
    ckpt = resolve_checkpoint(checkpoint(tmp_path / "ck", 1, recipe=recipe))
    loaded = eval_cmd.load_checkpoint_recipe(ckpt)
    own = parse_args(eval_cmd, [str(ckpt.path), "--data", "g.jsonl", "--format", "gsm8k"])
    terms = resolve_settings(own, ckpt, loaded).rewards.terms
    assert [(t.fn, t.kwargs) for t in terms] == [("math", {"style": "auto"})]
    other = parse_args(eval_cmd, [str(ckpt.path), "--data", "a.jsonl", "--format", "aime"])
    assert [t.fn for t in resolve_settings(other, ckpt, loaded).rewards.terms] == ["math"]
    assert resolve_settings(other, ckpt, loaded).rewards.terms[0].kwargs == {}


@needs_data
def test_instruction_and_system_prompt_flags(tmp_path, checkpoint, parse_args):
    recipe = {
        **RECIPE,
        "data": {"eval": {"split": "test", "system_prompt": "Be brief.", "instruction": "Go."}},
    }
    ckpt = resolve_checkpoint(checkpoint(tmp_path / "ck", 1, recipe=recipe))
    loaded = eval_cmd.load_checkpoint_recipe(ckpt)
    s = resolve_settings(parse_args(eval_cmd, [str(ckpt.path)]), ckpt, loaded)
    assert (s.data.system_prompt, s.data.instruction) == ("Be brief.", "Go.")
    s = resolve_settings(parse_args(eval_cmd, [str(ckpt.path), "--data", "x.jsonl"]), ckpt, loaded)
    assert (s.data.system_prompt, s.data.instruction) == ("Be brief.", "Go.")  # inherited by --data
    argv = [str(ckpt.path), "--instruction", "boxed", "--system-prompt", ""]
    s = resolve_settings(parse_args(eval_cmd, argv), ckpt, loaded)
    assert s.data.instruction == eval_cmd.INSTRUCTIONS["boxed"]
    assert "\\boxed{}" in s.data.instruction and s.data.system_prompt is None
    argv = [str(ckpt.path), "--instruction", "Answer with a number."]
    assert (
        resolve_settings(parse_args(eval_cmd, argv), ckpt, loaded).data.instruction == "Answer with a number."
    )


@needs_data
def test_instruction_reaches_the_prompt(tmp_path):
    from rlvr.config.data import DatasetConfig
    from rlvr.data.loaders import format_prompt

    cfg = DatasetConfig(template="plain", system_prompt="Sys.", instruction=eval_cmd.INSTRUCTIONS["boxed"])
    prompt, messages = format_prompt("What is 2+2?", cfg)
    assert prompt == "Sys.\n\nWhat is 2+2?\n\n" + eval_cmd.INSTRUCTIONS["boxed"]
    assert messages[-1] == {"role": "user", "content": "What is 2+2?\n\n" + eval_cmd.INSTRUCTIONS["boxed"]}
