"""The policy schema (DESIGN §4): what a `GatePolicy` and a `WaiverSet` may say.

Every model forbids unknown keys, so a typo is an error with a line number rather than
a rule that silently never applies. Rules are a tagged union on `check`. Each rule and
waiver remembers where it was written (`location`), set by the loader.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from cg_gate.items import MAX_SAMPLES, MAX_TEMPERATURE
from cg_gate.record import ANALYSIS_DEFAULTS as _D
from cg_gate.record import AnalysisSettings, Location, Mode, PolicyInfo, Severity

API_VERSION = "cg-gate/v1"

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# Upper bounds of numeric settings: far above any sensible value, low enough that a typo
# (`samples: 1e11`) is an error at its line instead of an allocation that cannot succeed.
MAX_RESAMPLES = 100_000
MAX_COUNT = 10_000_000
MAX_RATIO = 1e6
MAX_SEED = 2**32 - 1
MAX_FEATURE_ID = 2**31 - 1
MAX_WAIVER_DAYS = 3650
MAX_PATTERN_CHARS = 1000


class _Spec(BaseModel):
    # every number must be finite: NaN passes no comparison and .inf no sane bound
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)

    _location: Location | None = PrivateAttr(default=None)

    @property
    def location(self) -> Location | None:
        """Where this object is written (file, line, column), when it came from a file."""
        return self._location


# --------------------------------------------------------------------------- metadata, analysis


class Metadata(_Spec):
    name: str = Field(description="Policy name; the prefix of every stable rule id.")
    version: str | None = Field(None, description="Policy version.")
    owner: str | None = Field(None, description="Team or person who owns the policy.")
    description: str | None = Field(None, description="What the policy is for.")

    @field_validator("name")
    @classmethod
    def _name_is_an_id(cls, v: str) -> str:
        if not _RULE_ID.match(v):
            raise ValueError("the policy name is part of every stable rule id: use letters, "
                             "digits, '_', '-' or '.', no spaces (e.g. 'assistant-release')")
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: object) -> object:
        return str(v) if isinstance(v, (int, float)) else v


class BootstrapSpec(_Spec):
    samples: int = Field(_D.bootstrap_samples, ge=1, le=MAX_RESAMPLES,
                         description="Bootstrap resamples for every CI.")
    confidence: float = Field(_D.confidence, gt=0, lt=1, description="Two-sided confidence level.")
    seed: int = Field(_D.seed, ge=0, le=MAX_SEED, description="Seed of every resampling.")


class StabilitySpec(_Spec):
    repeats: int = Field(_D.stability_repeats, ge=0, le=MAX_RESAMPLES, description="Random item drops.")
    drop: float = Field(_D.stability_drop, gt=0, lt=1, description="Share of items dropped each time.")


class ExerciseSpec(_Spec):
    strength: float = Field(
        _D.exercise_strength, gt=0, le=MAX_RATIO,
        description="Share of a member's exemplar level an item must reach to exercise it.",
    )
    min_items: int = Field(_D.exercise_min_items, ge=1, le=MAX_COUNT,
                           description="Items that must exercise a member to cover it.")


class AnalysisSpec(_Spec):
    min_support: int = Field(_D.min_support, ge=1, le=MAX_COUNT,
                             description="Items needed before χ_model is reported.")
    tau_under: float = Field(_D.tau_under, ge=0, le=MAX_RATIO,
                             description="χ_bench below this is under-represented.")
    tau_over: float = Field(_D.tau_over, gt=0, le=MAX_RATIO,
                            description="χ_bench above this is over-represented.")
    eps: float = Field(_D.eps, ge=0, le=MAX_RATIO, description="χ_bench at or below eps counts as missing.")
    bootstrap: BootstrapSpec = Field(default_factory=BootstrapSpec)
    stability: StabilitySpec = Field(default_factory=StabilitySpec)
    exercise: ExerciseSpec = Field(default_factory=ExerciseSpec)
    max_density: float = Field(
        _D.max_density, gt=0, le=1,
        description="A feature firing on more of the neutral reference texts than this is dense: "
                    "no family member, left out of coverage and of concept rankings.",
    )
    min_purity: float = Field(
        _D.min_purity, ge=0, le=1,
        description="Share of a family's saliency that must lie on its intended categories before "
                    "its performance and regression rules are judged.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> AnalysisSpec:
        if self.tau_under > self.tau_over:
            raise ValueError("tau_under must not exceed tau_over")
        return self

    def to_settings(self) -> AnalysisSettings:
        """These settings as the run record's `AnalysisSettings`."""
        return AnalysisSettings(
            min_support=self.min_support, tau_under=self.tau_under, tau_over=self.tau_over,
            eps=self.eps, bootstrap_samples=self.bootstrap.samples,
            confidence=self.bootstrap.confidence, seed=self.bootstrap.seed,
            stability_repeats=self.stability.repeats, stability_drop=self.stability.drop,
            exercise_strength=self.exercise.strength, exercise_min_items=self.exercise.min_items,
            min_purity=self.min_purity, max_density=self.max_density,
        )


# --------------------------------------------------------------------------- concepts


class ExemplarSpec(_Spec):
    path: str | None = Field(
        None, description="JSONL of exemplar texts, relative to the policy file; 'pkg:' = cg_gate/data."
    )
    texts: list[str] | None = Field(None, description="Exemplar texts written inline.")
    min_ratio: float = Field(
        3.0, gt=0, le=MAX_RATIO, description="Fit exemplar mean ≥ min_ratio × the mean on every negative group."
    )
    min_precision: float = Field(
        0.5, ge=0, le=1,
        description="Share of a member's group-balanced saliency on the fit exemplars "
                    "(cg_gate/families/_select.py).",
    )
    reference_weight: float = Field(
        3.0, ge=0, le=MAX_RATIO, description="Weight of the reference set against one other family in precision."
    )
    top_k: int | None = Field(25, ge=1, le=MAX_COUNT, description="Keep only the k most precise members.")
    min_fire: int = Field(3, ge=1, le=MAX_COUNT, description="A member must fire on at least this many fit exemplars.")
    contrast: bool = Field(
        True, description="Other families' exemplars are negatives too (not only the reference)."
    )
    reference: str | None = Field(
        None, description="Reference texts (JSONL); default: pkg:reference/neutral.jsonl."
    )

    _resolved_path: Path | None = PrivateAttr(default=None)
    _resolved_reference: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_source(self) -> ExemplarSpec:
        if (self.path is None) == (self.texts is None):
            raise ValueError("give exactly one of 'path' or 'texts'")
        if self.texts is not None and not [t for t in self.texts if t.strip()]:
            raise ValueError("'texts' must hold at least one non-empty text")
        return self

    @property
    def resolved_path(self) -> Path | None:
        """Absolute exemplar file, set by the loader."""
        return self._resolved_path

    @property
    def resolved_reference(self) -> Path | None:
        """Absolute reference file, set by the loader (None: the shipped neutral set)."""
        return self._resolved_reference


class MatchSpec(_Spec):
    labels: list[Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_CHARS)]] = Field(
        default_factory=list, description="Regexes (RE2 syntax) searched in feature labels.")
    ids: list[Annotated[int, Field(ge=0, le=MAX_FEATURE_ID)]] = Field(
        default_factory=list, description="Feature ids.")
    exemplars: ExemplarSpec | None = Field(None, description="Texts that define the family.")

    @model_validator(mode="after")
    def _some_selector(self) -> MatchSpec:
        if not self.labels and not self.ids and self.exemplars is None:
            raise ValueError("give at least one selector: labels, ids or exemplars")
        return self


class ConceptSpec(_Spec):
    title: str | None = Field(None, description="Human title of the family.")
    description: str | None = Field(None, description="What the family stands for.")
    match: MatchSpec = Field(description="How member features are selected.")
    categories: list[str] = Field(
        default_factory=list,
        description="Item categories the family is meant for; with them, purity gates its rules.",
    )
    min_purity: float | None = Field(
        None, ge=0, le=1, description="Overrides analysis.min_purity for this family."
    )


# --------------------------------------------------------------------------- rules


class _RuleBase(_Spec):
    id: str = Field(description="Unique rule id, e.g. 'CG001'.")
    title: str | None = Field(None, description="What the rule asks; generated when absent.")
    concept: str | None = Field(None, description="Family the rule is about.")
    severity: Severity = Field("error", description="error | warn | info.")
    mode: Mode = Field("enforce", description="enforce fails the build; audit only reports.")
    tags: list[str] = Field(default_factory=list, description="Free tags, e.g. 'euai:annex-iv-2g'.")
    description: str | None = Field(None, description="Why the rule exists.")

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: object) -> object:
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if isinstance(v, str) and not _RULE_ID.match(v):
            raise ValueError("a rule id is letters, digits, '_', '-' or '.', e.g. 'CG001'")
        return v

    @model_validator(mode="after")
    def _default_title(self) -> _RuleBase:
        if self.title is None:
            self.title = self.describe()
        return self

    def describe(self) -> str:  # pragma: no cover - every kind overrides it
        """What the rule asks, in words."""
        raise NotImplementedError

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"

    def _fam(self) -> str:
        return f"'{self.concept}'"


def _suites_phrase(suites: list[str] | None) -> str:
    return f" in each of the suites {', '.join(suites)}" if suites else " across the suite set"


class CoverageRule(_RuleBase):
    check: Literal["coverage"]
    concept: str
    min_covered_fraction: float | None = Field(None, ge=0, le=1)
    min_mean_chi_bench: float | None = Field(None, ge=0, le=MAX_RATIO)
    suites: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _a_threshold(self) -> CoverageRule:
        if self.min_covered_fraction is None and self.min_mean_chi_bench is None:
            raise ValueError("a coverage rule needs min_covered_fraction and/or min_mean_chi_bench")
        return self

    def describe(self) -> str:
        parts = []
        if self.min_covered_fraction is not None:
            parts.append(f"at least {self.min_covered_fraction:.0%} of family {self._fam()} "
                         f"features are covered{_suites_phrase(self.suites)}")
        if self.min_mean_chi_bench is not None:
            parts.append(f"the family's mean χ_bench is at least {self.min_mean_chi_bench:g}"
                         f"{_suites_phrase(self.suites)}")
        return "; ".join(parts)


class MissingRule(_RuleBase):
    check: Literal["missing"]
    concept: str
    suites: list[str] | None = Field(None, min_length=1)

    def describe(self) -> str:
        where = (f"missing from any of the suites {', '.join(self.suites)}" if self.suites
                 else "missing from the whole suite set")
        return f"no feature of family {self._fam()} is {where}"


class OverrepresentedRule(_RuleBase):
    check: Literal["overrepresented"]
    concept: str
    max_over_fraction: float = Field(0.0, ge=0, le=1)

    def describe(self) -> str:
        return (f"at most {self.max_over_fraction:.0%} of family {self._fam()} features are "
                f"over-represented (χ_bench above tau_over)")


class PerformanceRule(_RuleBase):
    check: Literal["performance"]
    concept: str
    min: float = Field(ge=0, le=1, description="Lowest acceptable χ_model(F).")
    confidence: float | None = Field(
        None, gt=0, lt=1, description="Compare the CI's lower bound (at this level) instead."
    )
    scope: Literal["auto", "intended", "all"] = Field(
        "auto", description="Items judged: the family's intended categories, all items, or "
                            "auto (intended when the family names categories, else all)."
    )

    def describe(self) -> str:
        what = ("the lower confidence bound of" if self.confidence is not None else "")
        return (f"{what} the model's saliency-weighted score χ_model on family {self._fam()} "
                f"is at least {self.min:g}").strip().replace("  ", " ")


class RegressionRule(_RuleBase):
    check: Literal["regression"]
    concept: str
    max_drop: float = Field(ge=0, le=1, description="Largest tolerated drop of χ_model(F).")
    confidence: float | None = Field(
        None, gt=0, lt=1, description="Confidence of the paired bootstrap (default: analysis)."
    )
    scope: Literal["auto", "intended", "all"] = Field(
        "auto", description="Items judged: the family's intended categories, all items, or "
                            "auto (intended when the family names categories, else all)."
    )

    def describe(self) -> str:
        conf = (f"{self.confidence:.0%} confidence" if self.confidence is not None
                else "the analysis confidence")
        return (f"χ_model on family {self._fam()} does not drop by more than {self.max_drop:g} "
                f"against the baseline (judged on the upper bound of the paired {conf} interval "
                "of candidate − baseline)")


class FidelityRule(_RuleBase):
    check: Literal["fidelity"]
    min_fve: float = Field(ge=0, le=1, description="Lowest fraction of variance explained.")
    max_dead_share: float | None = Field(None, ge=0, le=1, description="Highest share of dead features.")

    def describe(self) -> str:
        text = (f"the SAE explains at least {self.min_fve:.0%} of the variance of this "
                f"checkpoint's activations on the suites")
        if self.max_dead_share is not None:
            text += f", and at most {self.max_dead_share:.0%} of its features never fire"
        return text


class StabilityRule(_RuleBase):
    check: Literal["stability"]
    concept: str
    max_std: float = Field(ge=0, le=MAX_RATIO, description="Largest std of χ_model(F) under random item drops.")

    def describe(self) -> str:
        return (f"χ_model on family {self._fam()} moves by a standard deviation of at most "
                f"{self.max_std:g} when items are dropped at random")


class ConsistencyRule(_RuleBase):
    check: Literal["consistency"]
    concept: str | None = Field(
        None, description="Judge the family's intended categories (its `categories`)."
    )
    categories: list[str] | None = Field(
        None, min_length=1, description="Categories judged, as 'category' or 'suite/category'."
    )
    max_flaky_share: float = Field(
        ge=0, le=1, description="Highest share of sampled items whose samples disagree, per category."
    )

    @model_validator(mode="after")
    def _one_scope(self) -> ConsistencyRule:
        if self.concept is not None and self.categories is not None:
            raise ValueError("a consistency rule names a family (concept) or categories, not both")
        return self

    def describe(self) -> str:
        if self.concept is not None:
            where = f"each intended category of family {self._fam()}"
        elif self.categories:
            where = f"each of the categories {', '.join(self.categories)}"
        else:
            where = "each category"
        return (f"at most {self.max_flaky_share:.0%} of the sampled items in {where} are flaky "
                "(some of their samples pass and some fail)")


class JudgeAgreementRule(_RuleBase):
    check: Literal["judge_agreement"]
    min_kappa: float = Field(ge=-1, le=1, description="Lowest Cohen's κ of judge vs people.")
    min_items: int = Field(20, ge=1, description="Human-labelled items the calibration needs.")
    lower_bound: bool = Field(
        False, description="Compare the lower bound of κ's bootstrap interval instead."
    )

    def describe(self) -> str:
        what = "the lower confidence bound of " if self.lower_bound else ""
        return (f"{what}the rubric judge's agreement with people (Cohen's κ, from a calibration "
                f"on at least {self.min_items} human-labelled items) is at least {self.min_kappa:g} "
                "for every rubric the run judges with")


Rule = Annotated[
    Union[CoverageRule, MissingRule, OverrepresentedRule, PerformanceRule, RegressionRule,
          FidelityRule, StabilityRule, ConsistencyRule, JudgeAgreementRule],
    Field(discriminator="check"),
]
AnyRule = Union[CoverageRule, MissingRule, OverrepresentedRule, PerformanceRule, RegressionRule,
                FidelityRule, StabilityRule, ConsistencyRule, JudgeAgreementRule]
"""Any one rule, as `Policy.rules` holds them."""
RULE_KINDS = ("coverage", "missing", "overrepresented", "performance", "regression", "fidelity",
              "stability", "consistency", "judge_agreement")
FAMILY_OPTIONAL = ("fidelity", "consistency", "judge_agreement")
"""Rule kinds not (or not necessarily) about a family."""


# --------------------------------------------------------------------------- waivers


class WaiverScope(_Spec):
    family: str | None = Field(None, description="Waive only for this family.")
    suite: str | None = Field(None, description="Waive only a failure confined to this suite.")


class Waiver(_Spec):
    rule: str = Field(description="Id of the rule waived.")
    scope: WaiverScope = Field(default_factory=WaiverScope)
    reason: str = Field(min_length=1, description="Why the rule is waived (not blank).")
    ticket: str | None = Field(None, description="Tracking ticket.")
    approved_by: str = Field(min_length=1, description="Who approved the waiver (not blank).")
    expires: dt.date = Field(description="Last day on which the waiver applies (ISO date); at "
                                         "most waiver_policy.max_days after the judging date.")

    @field_validator("reason", "approved_by")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank: say who approved the waiver and why")
        return v

    @field_validator("rule", mode="before")
    @classmethod
    def _rule_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("expires", mode="before")
    @classmethod
    def _date_only(cls, v: object) -> object:
        if isinstance(v, dt.datetime):
            raise ValueError("expires is a date (YYYY-MM-DD), not a timestamp")
        if isinstance(v, str):
            try:
                return dt.date.fromisoformat(v.strip())
            except ValueError:
                raise ValueError("expires must be an ISO date, YYYY-MM-DD") from None
        return v


class WaiverSet(_Spec):
    apiVersion: Literal["cg-gate/v1"] = Field(description="Schema version of the file.")
    kind: Literal["WaiverSet"]
    waivers: list[Waiver] = Field(default_factory=list)

    _path: Path | None = PrivateAttr(default=None)
    _digest: str | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def digest(self) -> str | None:
        """sha256 of the waiver file's bytes."""
        return self._digest


class WaiverPolicySpec(_Spec):
    max_days: int = Field(
        180, ge=1, le=MAX_WAIVER_DAYS,
        description="Longest a waiver may run: its expiry at most this many days after the date "
                    "the policy is judged on.",
    )


# --------------------------------------------------------------------------- the policy


class SamplingSpec(_Spec):
    samples: int = Field(1, ge=1, le=MAX_SAMPLES, description="Responses generated per item.")
    temperature: float | None = Field(
        None, gt=0, le=MAX_TEMPERATURE, description="Sampling temperature (needed for more than one sample)."
    )


class Policy(_Spec):
    """A gate policy: concept families, the rules over them and their waivers."""

    apiVersion: Literal["cg-gate/v1"] = Field(description="Schema version of the file.")
    kind: Literal["GatePolicy"]
    metadata: Metadata
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    sampling: SamplingSpec = Field(
        default_factory=SamplingSpec,
        description="Responses per item and temperature; --samples/--temperature win over it.",
    )
    concepts: dict[str, ConceptSpec] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    waivers: list[Waiver] = Field(default_factory=list)
    waiver_policy: WaiverPolicySpec = Field(default_factory=WaiverPolicySpec,
                                            description="Limits on waivers.")

    _path: Path | None = PrivateAttr(default=None)
    _digest: str | None = PrivateAttr(default=None)
    _waiver_set: WaiverSet | None = PrivateAttr(default=None)

    @field_validator("concepts")
    @classmethod
    def _keys(cls, v: dict[str, ConceptSpec]) -> dict[str, ConceptSpec]:
        for key in v:
            if not _KEY.match(str(key)):
                raise ValueError(f"family key '{key}' must start with a letter and hold only "
                                 "letters, digits, '_', '-' or '.'")
        return v

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def path(self) -> Path | None:
        """The policy file, as given to the loader."""
        return self._path

    @property
    def digest(self) -> str | None:
        """sha256 of the policy file's bytes."""
        return self._digest

    @property
    def waiver_set(self) -> WaiverSet | None:
        """The separate waiver file, when one was loaded."""
        return self._waiver_set

    def all_waivers(self) -> list[Waiver]:
        """Waivers written in the policy, then those of the separate waiver file."""
        extra = self._waiver_set.waivers if self._waiver_set is not None else []
        return [*self.waivers, *extra]

    def rule(self, rule_id: str) -> AnyRule:
        """The rule with this id (KeyError if none)."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def stable_id(self, rule_id: str) -> str:
        """'policy-name/rule-id', stable across runs."""
        return f"{self.metadata.name}/{rule_id}"

    def policy_info(self) -> PolicyInfo:
        """The manifest's record of this policy (paths and digests)."""
        ws = self._waiver_set
        return PolicyInfo(
            path=str(self._path) if self._path else "<memory>",
            name=self.metadata.name, version=self.metadata.version, owner=self.metadata.owner,
            digest=self._digest or "",
            waivers_path=str(ws.path) if ws is not None and ws.path else None,
            waivers_digest=ws.digest if ws is not None else None,
        )

