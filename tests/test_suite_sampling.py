"""A suite's own `sampling:` header: validation with file and line, precedence (command line >
policy > suite > one greedy response), two suites that disagree, and a run on the tiny model
that samples as the suite asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from builders import TINY_SUITE, build_tiny_model, build_tiny_sae
from cg_gate.cli import cli
from cg_gate.errors import ConfigError, SuiteError
from cg_gate.items import SuiteSampling
from cg_gate.pipeline import RunConfig
from cg_gate.pipeline._run import decide_sampling
from cg_gate.policy import SamplingSpec
from cg_gate.record import read_results
from cg_gate.suites import load_suite, suite_to_jsonl

HEADER = """\
apiVersion: cg-gate/v1
kind: Suite
metadata: {name: %(name)s}
%(sampling)s
items:
  - {id: a, input: hi, target: hi, scorer: exact_match}
"""


def _yaml(tmp_path: Path, sampling: str, name: str = "s") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(HEADER % {"name": name, "sampling": sampling})
    return path


# --------------------------------------------------------------------------- loading


def test_yaml_and_jsonl_headers_carry_sampling_and_jsonl_round_trips_it(tmp_path):
    suite = load_suite(_yaml(tmp_path, "sampling: {samples: 5, temperature: 0.7}"))
    assert suite.sampling == SuiteSampling(samples=5, temperature=0.7)
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text(suite_to_jsonl(suite))
    assert json.loads(jsonl.read_text().splitlines()[0])["sampling"] == {"samples": 5,
                                                                        "temperature": 0.7}
    again = load_suite(jsonl)
    assert again.sampling == suite.sampling and again.digest() == suite.digest()
    # a suite without the block asks for nothing
    assert load_suite(_yaml(tmp_path, "", name="plain")).sampling is None


@pytest.mark.parametrize("sampling, line, needle", [
    ("sampling:\n  samples: 3", 5, "3 samples per item need a temperature above 0"),
    ("sampling:\n  samples: 0\n  temperature: 0.7", 5, "sampling.samples"),
    ("sampling:\n  samples: 101\n  temperature: 0.7", 5, "sampling.samples"),
    ("sampling:\n  samples: 2\n  temperature: 5.5", 6, "sampling.temperature"),
    ("sampling:\n  samples: 2\n  temperature: 0", 6, "sampling.temperature"),
    ("sampling:\n  samples: 2\n  temperature: .nan", 6, "sampling.temperature"),
    ("sampling:\n  samples: 2\n  temperature: 0.5\n  seed: 3", 7, "sampling.seed"),
    ("sampling: 3", 4, "`sampling` must be a mapping"),
    ("sampling:\n  samples: true\n  temperature: 0.5", 5, "sampling.samples"),
    ("sampling:\n  samples: '3'\n  temperature: 0.5", 5, "sampling.samples"),
    ("sampling:\n  samples: 2\n  temperature: yes", 6, "sampling.temperature"),
])
def test_bad_sampling_exits_2_naming_file_and_line(tmp_path, sampling, line, needle):
    path = _yaml(tmp_path, sampling)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert needle in err.value.message
    assert (err.value.path, err.value.line) == (str(path), line)
    res = CliRunner().invoke(cli, ["suite", "validate", str(path)])
    assert res.exit_code == 2 and f"{path}:{line}" in res.output and "Traceback" not in res.output


def test_bad_sampling_in_a_jsonl_header_names_the_header_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"kind": "Suite", "sampling": {"samples": 4}}\n{"id": "a", "input": "hi"}\n')
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert (err.value.path, err.value.line) == (str(path), 1)
    assert "4 samples per item need a temperature" in err.value.message


def test_suite_validate_shows_the_sampling(tmp_path):
    res = CliRunner().invoke(cli, ["suite", "validate", str(
        _yaml(tmp_path, "sampling: {samples: 3, temperature: 0.7}"))])
    assert res.exit_code == 0
    assert "sampling: 3 samples per item at temperature 0.7" in res.output


# --------------------------------------------------------------------------- precedence


class _Policy:
    def __init__(self, **fields):
        self.sampling = SamplingSpec(**fields)


def _suite(tmp_path: Path, name: str, sampling: str | None):
    return load_suite(_yaml(tmp_path, f"sampling: {sampling}" if sampling else "", name=name))


def _config(tmp_path: Path, samples: int | None = None, temperature: float = 0.0) -> RunConfig:
    base = RunConfig(cache_dir=tmp_path, samples=samples)
    return base.model_copy(update={"generation": base.generation.model_copy(
        update={"temperature": temperature})})


def _got(choice) -> tuple:
    return choice.samples, choice.temperature, choice.samples_from, choice.temperature_from


def test_the_suite_decides_when_nothing_else_does(tmp_path):
    suite = _suite(tmp_path, "s", "{samples: 3, temperature: 0.7}")
    where = f"suite {suite.source}"
    assert _got(decide_sampling(_config(tmp_path), None, [suite])) == (3, 0.7, where, where)
    # a policy without a sampling block leaves it to the suite
    assert _got(decide_sampling(_config(tmp_path), _Policy(), [suite])) == (3, 0.7, where, where)
    # nothing anywhere: one greedy response
    plain = _suite(tmp_path, "p", None)
    assert _got(decide_sampling(_config(tmp_path), None, [plain])) == (1, 0.0, "default", "default")


def test_the_policy_wins_over_the_suite_and_the_command_line_over_both(tmp_path):
    suite = _suite(tmp_path, "s", "{samples: 3, temperature: 0.7}")
    policy = _Policy(samples=4, temperature=0.9)
    assert _got(decide_sampling(_config(tmp_path), policy, [suite])) == (4, 0.9, "policy", "policy")
    cli = _config(tmp_path, samples=2, temperature=1.2)
    assert _got(decide_sampling(cli, policy, [suite])) == (2, 1.2, "--samples", "--temperature")


def test_the_suites_temperature_fills_in_only_where_several_samples_need_one(tmp_path):
    suite = _suite(tmp_path, "s", "{samples: 3, temperature: 0.7}")
    where = f"suite {suite.source}"
    # the policy asks for 5 samples and gives no temperature: the suite's is used
    assert _got(decide_sampling(_config(tmp_path), _Policy(samples=5), [suite])) == (
        5, 0.7, "policy", where)
    # --samples 1 asks for one response: greedy, whatever the suite says
    assert _got(decide_sampling(_config(tmp_path, samples=1), None, [suite])) == (
        1, 0.0, "--samples", "default")


def test_two_suites_asking_for_different_sampling_exit_2_naming_both(tmp_path):
    a = _suite(tmp_path, "a", "{samples: 3, temperature: 0.7}")
    b = _suite(tmp_path, "b", "{samples: 5, temperature: 0.7}")
    with pytest.raises(ConfigError) as err:
        decide_sampling(_config(tmp_path), None, [a, b])
    assert a.source in err.value.message and b.source in err.value.message
    assert "--samples" in err.value.fix and "policy" in err.value.fix
    # settled by the command line or the policy, the disagreement decides nothing
    assert decide_sampling(_config(tmp_path, 2, 0.5), None, [a, b]).samples == 2
    assert decide_sampling(_config(tmp_path), _Policy(samples=1), [a, b]).samples == 1
    # agreeing suites, and a suite that asks for nothing, are fine
    same = _suite(tmp_path, "c", "{samples: 3, temperature: 0.7}")
    plain = _suite(tmp_path, "d", None)
    assert decide_sampling(_config(tmp_path), None, [a, plain, same]).samples == 3


# --------------------------------------------------------------------------- on the tiny model

POLICY = """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: p}
sampling: {samples: 2, temperature: 0.9}
analysis: {min_support: 2, bootstrap: {samples: 50, seed: 0}, stability: {repeats: 5}}
rules: []
"""


@pytest.fixture(scope="module")
def art(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("suite-sampling")
    build_tiny_model(root / "model", seed=0)
    build_tiny_sae(root / "sae", d_in=64, d_sae=256, hook="blocks.2.hook_resid_post")
    suite = TINY_SUITE % {"pattern": "e"}
    (root / "suite.yaml").write_text(suite.replace(
        "categories:", "sampling: {samples: 3, temperature: 1.0}\ncategories:"))
    (root / "other.yaml").write_text(suite.replace("name: tiny", "name: other").replace(
        "categories:", "sampling: {samples: 4, temperature: 1.0}\ncategories:"))
    (root / "policy.yaml").write_text(POLICY)
    return root


def _args(art: Path, out: Path, *suites: str) -> list[str]:
    return ["--model", str(art / "model"), "--sae", str(art / "sae"),
            *[a for s in suites or ("suite.yaml",) for a in ("--suite", str(art / s))],
            "--out", str(out), "--cache-dir", str(art / "cache"), "--max-new-tokens", "4",
            "--batch-size", "4", "--no-progress", "--no-validity", "--format", "json"]


def test_a_suite_asking_for_three_samples_gets_three_per_item_and_a_policy_overrides_it(
        art, tmp_path):
    res = CliRunner().invoke(cli, ["run", *_args(art, tmp_path / "a")])
    assert res.exit_code == 0, res.output
    run = read_results(tmp_path / "a" / "results.json")
    assert [len(it.samples) for it in run.items] == [3] * 6
    gen = run.manifest.generation
    assert (gen.samples_per_item, gen.temperature) == (3, 1.0)
    where = f"suite {art / 'suite.yaml'}"
    assert run.manifest.arguments["sampling"] == {
        "samples": 3, "temperature": 1.0, "samples_from": where, "temperature_from": where}

    res = CliRunner().invoke(cli, ["run", *_args(art, tmp_path / "p"),
                                   "--policy", str(art / "policy.yaml")])
    assert res.exit_code == 0, res.output
    run = read_results(tmp_path / "p" / "results.json")
    assert [len(it.samples) for it in run.items] == [2] * 6
    assert (run.manifest.generation.samples_per_item, run.manifest.generation.temperature) == (
        2, 0.9)
    assert run.manifest.arguments["sampling"]["samples_from"] == "policy"


def test_two_suites_that_disagree_exit_2_before_any_model_loads(art, tmp_path):
    res = CliRunner().invoke(cli, ["run", *_args(art, tmp_path / "x", "suite.yaml",
                                                     "other.yaml")])
    assert res.exit_code == 2, res.output
    assert str(art / "suite.yaml") in res.output and str(art / "other.yaml") in res.output
    assert "--samples" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x" / "results.json").exists()
