"""Resolve a policy's concept families to SAE features, with the reason for each member.

Selectors (any combination; a feature's reasons are merged):

- `labels`: regexes searched (RE2, linear time) in feature labels → reason `label:/regex/`;
- `ids`: explicit feature ids → reason `id`;
- `exemplars`: texts that show the family, split into `fit` and `heldout` texts (a
  `"split"` field per line; without one, every fourth text is held out once there are at
  least eight). Members are chosen on the fit texts against **negatives** — every other
  exemplar family's texts (unless `contrast: false`) and the neutral reference set — by
  `_select.select_members` (dense, rare, unspecific and imprecise features rejected, the
  `top_k` most precise kept), and measured on the held-out texts. Reason
  `exemplar p=<precision>`.

The reference set is `exemplars.reference` when the policy names one, else the shipped
`cg_gate/data/reference/neutral.jsonl`. `resolve_families` resolves a policy's families
together, since each exemplar family is the others' negative.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from cg_gate.errors import ConfigError, PolicyError
from cg_gate.families._labels import Labels, compile_label_pattern
from cg_gate.families._select import MemberStats, Selection, SelectionThresholds, select_members
from cg_gate.families._texts import DEFAULT_REFERENCE, load_text_records, resolve_text_path
from cg_gate.policy import ConceptSpec, ExemplarSpec
from cg_gate.record import ANALYSIS_DEFAULTS as _D
from cg_gate.record import FamilyMember, FamilySelection

SaliencyFn = Callable[[list[str]], sp.csr_matrix]
"""Texts → their item saliency a(x), a (len(texts) × K) sparse matrix (DESIGN §2.1)."""

REFERENCE_GROUP = "reference"
"""The neutral reference set's name among a family's negative groups."""
MEMBER_CONTEXTS = 2
"""Top-activating contexts kept per family member (from the labels file)."""
_HOLDOUT_EVERY = 4
_MIN_TO_SPLIT = 8


@dataclass(frozen=True)
class TextSplit:
    """Texts that choose members (`fit`) and texts that only measure them (`heldout`)."""

    fit: list[str]
    heldout: list[str]

    @property
    def all(self) -> list[str]:
        return self.fit + self.heldout


def split_records(records: list[tuple[str, str | None]]) -> TextSplit:
    """Fit/held-out texts from `(text, split)` records (module docstring for the default)."""
    records = [(t, sp_) for t, sp_ in records if t.strip()]
    if any(split is not None for _, split in records):
        return TextSplit(fit=[t for t, s in records if s != "heldout"],
                         heldout=[t for t, s in records if s == "heldout"])
    if len(records) < _MIN_TO_SPLIT:
        return TextSplit(fit=[t for t, _ in records], heldout=[])
    held = {i for i in range(len(records)) if i % _HOLDOUT_EVERY == _HOLDOUT_EVERY - 1}
    return TextSplit(fit=[t for i, (t, _) in enumerate(records) if i not in held],
                     heldout=[t for i, (t, _) in enumerate(records) if i in held])


@dataclass
class ResolvedFamily:
    """A family's member features, each with the reasons it was selected."""

    key: str
    title: str | None
    members: list[FamilyMember]
    selection: FamilySelection | None = None
    """How exemplar selection went (None: the family has no exemplars)."""
    notes: list[str] = field(default_factory=list)
    """What the resolver could not use (e.g. labels selector without a labels file)."""

    @property
    def ids(self) -> list[int]:
        """Member feature ids, ascending."""
        return [m.id for m in self.members]


def exemplar_split(spec: ExemplarSpec) -> TextSplit:
    """The exemplar texts of a family (inline, or read from its file), split fit/held-out."""
    if spec.texts is not None:
        return split_records([(t, None) for t in spec.texts])
    path = spec.resolved_path or resolve_text_path(spec.path or "", None)
    return split_records(load_text_records(path))


def reference_split(spec: ExemplarSpec | None = None) -> TextSplit:
    """The reference texts, split fit/held-out (default: the shipped neutral set)."""
    if spec is not None and spec.resolved_reference is not None:
        return split_records(load_text_records(spec.resolved_reference))
    ref = (spec.reference if spec is not None else None) or DEFAULT_REFERENCE
    return split_records(load_text_records(resolve_text_path(ref, None)))


def exemplar_texts(spec: ExemplarSpec) -> list[str]:
    """Every exemplar text of a family, fit then held-out."""
    return exemplar_split(spec).all


def reference_texts(spec: ExemplarSpec | None = None) -> list[str]:
    """Every reference text, fit then held-out."""
    return reference_split(spec).all


def _check_width(m: sp.spmatrix, d_sae: int, what: str) -> sp.csr_matrix:
    if m.shape[1] != d_sae:
        raise ConfigError(f"{what} saliency has {m.shape[1]} concepts, the SAE has {d_sae}",
                          fix="compute exemplar saliency with the same SAE")
    return sp.csr_matrix(m)


def feature_density(reference: sp.spmatrix) -> np.ndarray:
    """(K,) share of the reference texts each feature fires on."""
    ref = sp.csr_matrix(reference)
    if ref.shape[0] == 0:
        return np.zeros(ref.shape[1])
    return np.asarray(ref.getnnz(axis=0), dtype=np.float64) / ref.shape[0]


def _thresholds(spec: ExemplarSpec, max_density: float) -> SelectionThresholds:
    return SelectionThresholds(min_precision=spec.min_precision,
                               reference_weight=spec.reference_weight, min_ratio=spec.min_ratio,
                               max_density=max_density, min_fire=spec.min_fire, top_k=spec.top_k)


def _selection_record(sel: Selection, t: SelectionThresholds) -> FamilySelection:
    return FamilySelection(
        candidates=sel.candidates, rejected=dict(sel.rejected), confusions=dict(sel.confusions),
        heldout_auroc=sel.heldout_auroc, n_fit=sel.n_fit, n_heldout=sel.n_heldout,
        n_negatives_fit=sel.n_negatives_fit, n_negatives_heldout=sel.n_negatives_heldout,
        thresholds={"min_precision": t.min_precision, "reference_weight": t.reference_weight,
                    "min_ratio": t.min_ratio, "max_density": t.max_density,
                    "min_fire": float(t.min_fire),
                    "top_k": float(t.top_k) if t.top_k is not None else None},
    )


@dataclass
class _Texts:
    """One exemplar family's (or the reference's) fit and held-out saliency."""

    fit: sp.csr_matrix
    heldout: sp.csr_matrix


def _read(split: TextSplit, saliency: SaliencyFn, d_sae: int, what: str) -> _Texts:
    if not split.fit:
        raise ConfigError(f"{what} has no fit texts (every text is marked held-out)",
                          fix="mark most texts \"split\": \"fit\"")
    fit = _check_width(saliency(split.fit), d_sae, what)
    held = (_check_width(saliency(split.heldout), d_sae, what) if split.heldout
            else sp.csr_matrix((0, d_sae)))
    return _Texts(fit=fit, heldout=held)


def resolve_families(
    concepts: Mapping[str, ConceptSpec],
    *,
    labels: Labels | None,
    d_sae: int,
    exemplar_saliency: SaliencyFn | None,
    max_density: float = _D.max_density,
) -> dict[str, ResolvedFamily]:
    """Resolve every family of a policy (in policy order) to member features.

    `exemplar_saliency` runs texts through the model and SAE (the pipeline provides it);
    it is required when any family has exemplars. Raises `PolicyError` for ids beyond the
    SAE and `ConfigError` when exemplars cannot be scored.
    """
    texts: dict[str, _Texts] = {}  # exemplar family → its texts' saliency
    references: dict[str, _Texts] = {}  # reference file → its texts' saliency (read once)
    reference_of: dict[str, _Texts] = {}  # exemplar family → its reference set
    for key, spec in concepts.items():
        ex = spec.match.exemplars
        if ex is None:
            continue
        if exemplar_saliency is None:
            raise ConfigError(f"family '{key}' is defined by exemplars but no model and SAE are "
                              "available to read them",
                              fix="run with a model and SAE, or select the family by labels or ids")
        texts[key] = _read(exemplar_split(ex), exemplar_saliency, d_sae, f"family '{key}' exemplars")
        ref_key = str(ex.resolved_reference or ex.reference or DEFAULT_REFERENCE)
        if ref_key not in references:
            references[ref_key] = _read(reference_split(ex), exemplar_saliency, d_sae,
                                        "the reference set")
        reference_of[key] = references[ref_key]

    out = {}
    for key, spec in concepts.items():
        members = _by_labels_and_ids(key, spec, labels, d_sae)
        selection = None
        ex = spec.match.exemplars
        notes = []
        if spec.match.labels and not labels:
            notes.append("label selectors ignored: no labels file for this SAE")
        if ex is not None:
            own, ref = texts[key], reference_of[key]
            others = [k for k in concepts if k != key and k in texts] if ex.contrast else []
            neg_fit = {k: texts[k].fit for k in others} | {REFERENCE_GROUP: ref.fit}
            neg_held = {k: texts[k].heldout for k in others} | {REFERENCE_GROUP: ref.heldout}
            t = _thresholds(ex, max_density)
            sel = select_members(own.fit, neg_fit, REFERENCE_GROUP, t, heldout=own.heldout,
                                 negatives_heldout=neg_held)
            selection = _selection_record(sel, t)
            for m in sel.members:
                members.setdefault(m.id, ([], None))[0].append(f"exemplar p={m.precision:.2f}")
                members[m.id] = (members[m.id][0], m)
            if not sel.members:
                notes.append("no feature met the exemplar criteria")
        out[key] = ResolvedFamily(
            key=key, title=spec.title, selection=selection, notes=notes,
            members=[_member(fid, reasons, stats, labels) for fid, (reasons, stats)
                     in sorted(members.items())])
    return out


def _member(fid: int, reasons: list[str], stats: MemberStats | None,
            labels: Labels | None) -> FamilyMember:
    label = labels.get(fid) if labels is not None else None
    contexts = list(labels.examples.get(fid, ()))[:MEMBER_CONTEXTS] if labels is not None else []
    if stats is None:
        return FamilyMember(id=fid, label=label, reasons=reasons, contexts=contexts)
    return FamilyMember(
        id=fid, label=label, reasons=reasons, contexts=contexts, auroc=stats.auroc,
        heldout_auroc=stats.heldout_auroc,
        ratio=None if np.isinf(stats.ratio) else stats.ratio,
        closest_group=stats.closest_group, density=stats.density, level=stats.level)


def _by_labels_and_ids(key: str, spec: ConceptSpec, labels: Labels | None,
                       d_sae: int) -> dict[int, tuple[list[str], MemberStats | None]]:
    reasons: dict[int, tuple[list[str], MemberStats | None]] = {}
    match = spec.match
    if match.labels and labels is not None and len(labels):
        for pattern in match.labels:
            rx = compile_label_pattern(pattern)
            for fid, label in labels.items():
                if fid < d_sae and rx.search(label):
                    reasons.setdefault(fid, ([], None))[0].append(f"label:/{pattern}/")
    for fid in match.ids:
        if fid >= d_sae:
            loc = spec.location
            raise PolicyError(
                f"family '{key}': feature id {fid} is beyond the SAE's {d_sae} features",
                path=loc.path if loc else None, line=loc.line if loc else None,
                column=loc.column if loc else None,
                fix="use ids of this SAE, or select the family by exemplars, which carry over "
                    "between SAEs")
        reasons.setdefault(fid, ([], None))[0].append("id")
    return reasons


def resolve_family(
    key: str,
    spec: ConceptSpec,
    *,
    labels: Labels | None,
    d_sae: int,
    exemplar_saliency: SaliencyFn | None,
    max_density: float = _D.max_density,
) -> ResolvedFamily:
    """One family on its own (its only negatives are the reference set)."""
    return resolve_families({key: spec}, labels=labels, d_sae=d_sae,
                            exemplar_saliency=exemplar_saliency, max_density=max_density)[key]
