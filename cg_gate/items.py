"""Suites and items: the typed objects every stage reads, shared by suites, scoring, models and sae.

A neutral module: it imports nothing of cg_gate, so `suites` (which loads and checks scorers)
and `scoring` (which scores items) both depend on it and not on each other.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ItemSeverity = Literal["critical", "high", "medium", "low"]


class ChatMessage(BaseModel):
    """One turn of a chat input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"] = Field(description="Speaker of the turn.")
    content: str = Field(description="Text of the turn.")


class ScorerSpec(BaseModel):
    """A scorer by registered name, with the arguments that rebuild it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Registered scorer name, e.g. 'exact_match'.")
    args: dict[str, Any] = Field(default_factory=dict, description="Factory arguments.")
    weight: float = Field(1.0, description="Weight when the item combines scorers by weight.")


class Category(BaseModel):
    """A category of a suite: what it is for and how much a failure matters."""

    model_config = ConfigDict(extra="forbid")

    purpose: str = Field("", description="What the category tests, in one sentence.")
    severity: ItemSeverity = Field("medium", description="Severity of a failure in it.")


class Item(BaseModel):
    """One evaluation item. `messages` is the input normalised to chat turns."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable id, unique within the suite.")
    suite: str = Field(description="Name of the suite the item belongs to.")
    messages: list[ChatMessage] = Field(description="Input as chat turns (plain text → one user turn).")
    target: str | list[str] | None = Field(None, description="Reference answer(s), if any.")
    scorers: list[ScorerSpec] = Field(default_factory=list, description="How a response is scored.")
    combine: Literal["all", "weighted"] = Field(
        "all", description="'all': every scorer must pass (min); 'weighted': weighted mean."
    )
    category: str = Field("default", description="Category within the suite.")
    severity: ItemSeverity = Field("medium", description="Severity of failing this item.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free metadata.")
    response: str | None = Field(None, description="Imported response, when not generated here.")
    score: float | None = Field(None, description="Imported score in [0,1], when not scored here.")
    reason: str | None = Field(None, description="Imported score's reason, if any.")

    @property
    def prompt(self) -> str:
        """The last user turn: the text a reader recognises the item by."""
        for msg in reversed(self.messages):
            if msg.role == "user":
                return msg.content
        return self.messages[-1].content if self.messages else ""

    def input_digest(self) -> str:
        """sha256 of what the model reads (its messages): the cache key of responses and
        activations, so editing a scorer or a target recomputes nothing."""
        blob = json.dumps([m.model_dump() for m in self.messages], sort_keys=True,
                          ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def digest(self) -> str:
        """sha256 of what the model reads and how it is scored (not the imported outputs)."""
        payload = {
            "id": self.id,
            "messages": [m.model_dump() for m in self.messages],
            "target": self.target,
            "scorers": [s.model_dump() for s in self.scorers],
            "combine": self.combine,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


MAX_SAMPLES = 100  # responses per item, wherever sampling is set
MAX_TEMPERATURE = 5.0


class SuiteSampling(BaseModel):
    """Responses per item and temperature a suite asks for (its header's `sampling:`); the
    same bounds as a policy's `sampling:`. Several samples need a temperature above 0."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # strict: `true` or "3" is a mistake here, not a number
    samples: int = Field(1, ge=1, le=MAX_SAMPLES, strict=True, description="Responses generated per item.")
    temperature: float | None = Field(
        None, gt=0, le=MAX_TEMPERATURE, strict=True,
        description="Sampling temperature (needed for more than one sample).",
    )

    @model_validator(mode="after")
    def _several_need_a_temperature(self) -> SuiteSampling:
        if self.samples > 1 and self.temperature is None:
            raise ValueError(f"{self.samples} samples per item need a temperature above 0 "
                             "(greedy decoding gives identical responses)")
        return self

    def describe(self) -> str:
        """'3 samples per item at temperature 0.7'."""
        n = f"{self.samples} sample{'s' if self.samples != 1 else ''} per item"
        return n + (f" at temperature {self.temperature:g}" if self.temperature is not None
                    else " (greedy)")


class Suite(BaseModel):
    """A named, versioned list of items with unique ids."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Suite name.")
    version: str | None = Field(None, description="Suite version.")
    description: str = Field("", description="What the suite is for.")
    categories: dict[str, Category] = Field(default_factory=dict, description="Declared categories.")
    items: list[Item] = Field(description="The items, in file order.")
    source: str = Field(description="File, dataset or import the suite was read from.")
    provenance: dict[str, Any] = Field(default_factory=dict, description="Split, revision, importer.")
    sampling: SuiteSampling | None = Field(
        None, description="Samples per item and temperature the suite asks for; the command line "
                          "and the policy win over it.")

    def digest(self) -> str:
        """sha256 over the item digests in order (the suite's content digest)."""
        h = hashlib.sha256()
        for item in self.items:
            h.update(item.digest().encode())
        return h.hexdigest()
