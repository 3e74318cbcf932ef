"""`cg-gate labels import-neuronpedia|autointerp`: build concept labels for an SAE.

Heavy imports (transformers, torch) happen inside `autointerp` only.
"""

from __future__ import annotations

from pathlib import Path

import click

from cg_gate._terminal import clean, echo
from cg_gate.cli._command import Group

_IN = click.Path(path_type=Path, exists=True, dir_okay=False)
_OUT = click.Path(path_type=Path, dir_okay=False)


@click.group(cls=Group)
def labels() -> None:
    """Build and import concept labels for an SAE."""


@labels.command("import-neuronpedia")
@click.argument("export", type=_IN)
@click.option("--out", type=_OUT, required=True, help="labels.jsonl to write.")
@click.pass_context
def import_neuronpedia_cmd(ctx: click.Context, export: Path, out: Path) -> None:
    """Convert a Neuronpedia explanations EXPORT (.jsonl, .json, optionally .gz) to labels JSONL.

    Each `index` becomes `id` and its first `description` the `label`.
    """
    from cg_gate.default import import_neuronpedia

    count = import_neuronpedia(export, out)
    echo(f"wrote {count} labels to {clean(out)}")
    ctx.exit(0)


@labels.command("autointerp")
@click.option("--sae", "sae_dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True, help="SAE folder (sae-lens format) the labels belong to.")
@click.option("--labels", "labels_file", type=_IN, required=True,
              help="labels.jsonl with top examples per feature.")
@click.option("--explainer", type=click.Path(path_type=Path, exists=True), required=True,
              help="Local instruct model: a transformers folder or a .gguf file.")
@click.option("--out", type=_OUT, required=True, help="labels.jsonl to write (may be the input).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Explain at most N features (in id order).")
@click.pass_context
def autointerp_cmd(ctx: click.Context, sae_dir: Path, labels_file: Path, explainer: Path, out: Path,
                   limit: int | None) -> None:
    """Ask a local instruct model for a one-line explanation of each live feature.

    The explainer reads the feature's top examples and answers greedily; its answer becomes the
    label and the previous label is kept as `heuristic_label`.
    """
    from cg_gate.default import autointerp_labels

    result = autointerp_labels(sae_dir, labels_file, explainer, out, limit=limit)
    echo(f"explained {result.explained} features, left {result.skipped} as they were; wrote {clean(out)}")
    ctx.exit(0)
