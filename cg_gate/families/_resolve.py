"""Resolve a policy's concept family to SAE features, with the reason for each member.

Selectors (any combination; a feature's reasons are merged):

- `labels`: regexes searched (`re.search`) in feature labels → reason `label:/regex/`;
- `ids`: explicit feature ids → reason `id`;
- `exemplars`: texts that show the family. With `E` the exemplars' saliency (texts × K)
  and `R` the reference set's, a feature `c` is a member iff
  1. it fires on at least `min_fire` exemplars (default 2, capped at the number of
     exemplars) — one stray activation is not a family,
  2. its exemplar mean `mean_x E[x,c]` is > 0, and
  3. `mean_x E[x,c] ≥ min_ratio · mean_x R[x,c]`; a feature silent on the reference set
     (mean 0) has an infinite ratio and passes.
  With `top_k`, only the k highest ratios are kept (ties: higher exemplar mean, then
  lower id). Reason `exemplar ×<ratio>` (`exemplar ×inf` for reference-silent ones).

The reference set is `exemplars.reference` when the policy names one, else the shipped
`cg_gate/data/reference/neutral.jsonl`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from cg_gate.errors import ConfigError, PolicyError
from cg_gate.families._labels import Labels
from cg_gate.families._texts import DEFAULT_REFERENCE, load_texts, resolve_text_path
from cg_gate.policy import ConceptSpec, ExemplarSpec
from cg_gate.record import FamilyMember

SaliencyFn = Callable[[list[str]], sp.csr_matrix]
"""Texts → their item saliency a(x), a (len(texts) × K) sparse matrix (DESIGN §2.1)."""


@dataclass(frozen=True)
class ExemplarScore:
    """How one feature fared on the exemplars against the reference set."""

    id: int
    exemplar_mean: float
    reference_mean: float
    ratio: float
    """exemplar_mean / reference_mean; inf when the reference mean is 0."""
    fired_on: int
    """Exemplars the feature fires on."""


@dataclass
class ResolvedFamily:
    """A family's member features, each with the reasons it was selected."""

    key: str
    title: str | None
    members: list[FamilyMember]
    exemplar_scores: list[ExemplarScore] = field(default_factory=list)
    """Scores of the exemplar-selected members, highest ratio first."""
    notes: list[str] = field(default_factory=list)
    """What the resolver could not use (e.g. labels selector without a labels file)."""

    @property
    def ids(self) -> list[int]:
        """Member feature ids, ascending."""
        return [m.id for m in self.members]


def exemplar_texts(spec: ExemplarSpec) -> list[str]:
    """The exemplar texts of a family (inline, or read from its file)."""
    if spec.texts is not None:
        return [t for t in spec.texts if t.strip()]
    path = spec.resolved_path or resolve_text_path(spec.path or "", None)
    return load_texts(path)


def reference_texts(spec: ExemplarSpec | None = None) -> list[str]:
    """The reference texts exemplar ratios are measured against (default: the neutral set)."""
    if spec is not None and spec.resolved_reference is not None:
        return load_texts(spec.resolved_reference)
    ref = (spec.reference if spec is not None else None) or DEFAULT_REFERENCE
    return load_texts(resolve_text_path(ref, None))


def _col_means(m: sp.spmatrix, d_sae: int, what: str) -> np.ndarray:
    if m.shape[1] != d_sae:
        raise ConfigError(f"{what} saliency has {m.shape[1]} concepts, the SAE has {d_sae}",
                          fix="compute exemplar saliency with the same SAE")
    if m.shape[0] == 0:
        raise ConfigError(f"{what} saliency has no rows", fix="give at least one text")
    return np.asarray(m.sum(axis=0), dtype=np.float64).ravel() / m.shape[0]


def select_by_exemplars(
    spec: ExemplarSpec, exemplar: sp.spmatrix, reference: sp.spmatrix, d_sae: int
) -> list[ExemplarScore]:
    """Apply the exemplar rule (module docstring) to exemplar and reference saliency."""
    ex = sp.csr_matrix(exemplar)
    ex_mean = _col_means(ex, d_sae, "exemplar")
    ref_mean = _col_means(sp.csr_matrix(reference), d_sae, "reference")
    fired = np.asarray((ex > 0).sum(axis=0)).ravel()
    need = min(spec.min_fire, ex.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ref_mean > 0, ex_mean / np.where(ref_mean > 0, ref_mean, 1.0), np.inf)
    keep = (ex_mean > 0) & (fired >= need) & (ratio >= spec.min_ratio)
    ids = np.flatnonzero(keep)
    order = np.lexsort((ids, -ex_mean[ids], -ratio[ids]))
    ids = ids[order]
    if spec.top_k is not None:
        ids = ids[: spec.top_k]
    return [ExemplarScore(int(i), float(ex_mean[i]), float(ref_mean[i]), float(ratio[i]),
                          int(fired[i])) for i in ids]


def _ratio_text(r: float) -> str:
    return "inf" if np.isinf(r) else f"{r:.1f}"


def resolve_family(
    key: str,
    spec: ConceptSpec,
    *,
    labels: Labels | None,
    d_sae: int,
    exemplar_saliency: SaliencyFn | None,
    reference_saliency: sp.spmatrix | None = None,
) -> ResolvedFamily:
    """Resolve family `key` to member features of an SAE with `d_sae` concepts.

    `exemplar_saliency` runs texts through the model and SAE (the pipeline provides it);
    it is required when the family has exemplars. `reference_saliency` is the reference
    set's saliency when the caller has it already; otherwise it is computed from the
    family's reference texts. Raises `PolicyError` for ids beyond the SAE and
    `ConfigError` when exemplars cannot be scored.
    """
    reasons: dict[int, list[str]] = {}
    notes: list[str] = []
    match = spec.match

    if match.labels:
        if labels is None or len(labels) == 0:
            notes.append("label selectors ignored: no labels file for this SAE")
        else:
            for pattern in match.labels:
                rx = re.compile(pattern)
                for fid, label in labels.items():
                    if fid < d_sae and rx.search(label):
                        reasons.setdefault(fid, []).append(f"label:/{pattern}/")

    for fid in match.ids:
        if fid >= d_sae:
            loc = spec.location
            raise PolicyError(
                f"family '{key}': feature id {fid} is beyond the SAE's {d_sae} features",
                path=loc.path if loc else None, line=loc.line if loc else None,
                column=loc.column if loc else None,
                fix="use ids of this SAE, or select the family by exemplars, which carry over "
                    "between SAEs")
        reasons.setdefault(fid, []).append("id")

    scores: list[ExemplarScore] = []
    if match.exemplars is not None:
        if exemplar_saliency is None:
            raise ConfigError(f"family '{key}' is defined by exemplars but no model and SAE are "
                              "available to read them",
                              fix="run with a model and SAE, or select the family by labels or ids")
        ex_sal = exemplar_saliency(exemplar_texts(match.exemplars))
        ref_sal = reference_saliency
        if ref_sal is None or match.exemplars.reference is not None:
            ref_sal = exemplar_saliency(reference_texts(match.exemplars))
        scores = select_by_exemplars(match.exemplars, ex_sal, ref_sal, d_sae)
        for s in scores:
            reasons.setdefault(s.id, []).append(f"exemplar ×{_ratio_text(s.ratio)}")
        if not scores:
            notes.append("no feature met the exemplar criteria")

    members = [FamilyMember(id=fid, label=labels.get(fid) if labels is not None else None,
                            reasons=reasons[fid]) for fid in sorted(reasons)]
    return ResolvedFamily(key=key, title=spec.title, members=members, exemplar_scores=scores,
                          notes=notes)
