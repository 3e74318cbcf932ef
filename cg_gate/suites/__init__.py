"""Evaluation suites: the typed model, loaders for every format, and result imports."""

from cg_gate.suites._imports import (
    IMPORTERS,
    import_garak,
    import_helm,
    import_inspect,
    import_jsonl,
    import_lm_eval,
    import_openai_evals,
    import_promptfoo,
    import_results,
)
from cg_gate.suites._load import (
    API_VERSION,
    SuiteSpec,
    derive_id,
    load_suite,
    load_suites,
    parse_mapping,
    parse_spec,
    suite_to_jsonl,
)
from cg_gate.items import (
    Category,
    ChatMessage,
    Item,
    ItemSeverity,
    ScorerSpec,
    Suite,
    SuiteSampling,
)
from cg_gate.suites._starter import starter_suite_path

__all__ = [
    "API_VERSION",
    "IMPORTERS",
    "Category",
    "ChatMessage",
    "Item",
    "ItemSeverity",
    "ScorerSpec",
    "Suite",
    "SuiteSampling",
    "SuiteSpec",
    "derive_id",
    "import_garak",
    "import_helm",
    "import_inspect",
    "import_jsonl",
    "import_lm_eval",
    "import_openai_evals",
    "import_promptfoo",
    "import_results",
    "load_suite",
    "load_suites",
    "parse_mapping",
    "parse_spec",
    "starter_suite_path",
    "suite_to_jsonl",
]
