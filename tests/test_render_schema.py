"""results.json schema: committed file equals the model's, stored records validate and load."""

from __future__ import annotations

import json

import jsonschema

from cg_gate.record import SCHEMA_VERSION, read_results
from cg_gate.render import results_schema, results_schema_text
from cg_gate.render._env import SCHEMA_PATH
from fixtures.make_run import FIXTURE_V1, FIXTURE_V1_1, FIXTURE_V1_2, make_run


def test_committed_schema_equals_generated():
    # A failure here means the GateRun model changed: regenerate deliberately with
    # `python -m cg_gate.render._schema_json` and commit the file.
    assert SCHEMA_PATH.read_text(encoding="utf-8") == results_schema_text()


def test_schema_is_draft_2020_12_and_names_its_version():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(SCHEMA_VERSION)
    jsonschema.Draft202012Validator.check_schema(schema)


def test_fixture_record_validates_against_schema():
    data = json.loads(FIXTURE_V1.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(results_schema()).validate(data)


def test_schema_rejects_a_record_with_a_bad_status():
    data = json.loads(FIXTURE_V1.read_text(encoding="utf-8"))
    data["verdicts"][0]["status"] = "maybe"
    errors = list(jsonschema.Draft202012Validator(results_schema()).iter_errors(data))
    assert errors, "a status outside the enum must not validate"


def test_stored_v1_record_reads_back_equal_to_the_fixture():
    run = read_results(FIXTURE_V1)
    assert run.schema_version == "1.0.0"
    assert run.manifest.run_id == "20261124T020000Z-3f2a9c"
    assert len(run.verdicts) == 8 and len(run.concepts) == 30 and len(run.items) == 10
    assert {v.status for v in run.verdicts} == {"pass", "warn", "fail", "insufficient_data",
                                               "waived"}
    # Fields added in 1.1.0 read back as "not measured", never as invented figures.
    refusal = run.families[0]
    assert refusal.selection is None and refusal.scoped is None
    assert refusal.attribution == [] and refusal.drivers == []
    assert refusal.purity.intended == [] and refusal.purity.judged
    assert all(c.density is None and not c.dense for c in run.concepts)


def test_stored_v1_1_record_reads_back_equal_to_the_fixture():
    run = read_results(FIXTURE_V1_1)
    assert run.schema_version == run.manifest.schema_version == "1.1.0"
    assert SCHEMA_VERSION == "1.2.0"  # 1.2 only added fields with defaults: 1.1 reads as it was
    now = make_run().model_dump(mode="json")
    now["schema_version"] = now["manifest"]["schema_version"] = "1.1.0"
    stored = run.model_dump(mode="json")
    assert stored.pop("digest") and now.pop("digest")  # the digest covers the version
    assert stored == now
    jsonschema.Draft202012Validator(results_schema()).validate(
        json.loads(FIXTURE_V1_1.read_text(encoding="utf-8")))


def test_dumped_record_reads_back_equal_and_refuses_nan():
    import math

    import pytest

    from cg_gate.record import dump_results

    run = make_run()
    text = dump_results(run)
    assert text.endswith("}\n") and text.startswith("{\n  ")  # pretty, one key a line
    assert json.loads(text) == run.model_dump(mode="json")
    run.fidelity.fve = math.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        dump_results(run)


def test_stored_v1_2_record_validates_against_the_schema():
    jsonschema.Draft202012Validator(results_schema()).validate(
        json.loads(FIXTURE_V1_2.read_text(encoding="utf-8")))
