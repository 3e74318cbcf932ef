"""Shard records: what one `cg-gate run --shard i/N` hands to `cg-gate merge`.

A shard record holds the model-side work of a slice of the items — responses, scores
and the full per-item extraction sums (saliency rows, T_x, reconstruction sums) of
each checkpoint — plus the identity of the run it belongs to. Every summary of the
record (χ, families, bootstrap, stability, fidelity, verdicts) is computed by the merge
from the combined item rows, never from shard summaries.

One `.npz` file per shard (no pickle): numeric arrays per side, and a JSON header.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cg_gate.errors import ResultsError
from cg_gate.record._io import atomic_write_bytes

SHARD_FORMAT = 1
SHARD_FIX = "re-run the shard with the same cg-gate version and options (`cg-gate run --shard I/N`)"


def shard_file_name(index: int, count: int) -> str:
    """`cg-gate-shard-2-of-4.npz`."""
    return f"cg-gate-shard-{index}-of-{count}.npz"


@dataclass
class ShardSide:
    """One checkpoint's rows on the shard's items, in the shard's item order."""

    info: dict[str, Any]  # ModelInfo as JSON
    texts: list[str | None]
    reasons: list[str | None]
    scores: np.ndarray  # (n,) float64, NaN = unscored
    generated: int
    saliency: Any  # scipy.sparse.csr_matrix (n, d_sae) float32
    n_tokens: np.ndarray  # (n,) int64
    sse: np.ndarray  # (n,) float64
    sum_sq: np.ndarray  # (n,) float64
    sum_x: np.ndarray  # (n, d_in) float64
    l0_sum: np.ndarray  # (n,) float64
    act_keys: list[str]
    tokens_processed: int = 0
    cache_hits: int = 0
    exemplar_texts: list[str] = field(default_factory=list)
    exemplars: Any = None  # csr (len(exemplar_texts), d_sae), or None
    samples: list[Any] = field(default_factory=list)  # per item: its N responses
    sample_scores: list[Any] = field(default_factory=list)
    sample_reasons: list[Any] = field(default_factory=list)
    sample_tokens: list[Any] = field(default_factory=list)
    costs: list[dict[str, Any]] = field(default_factory=list)  # StageCost rows as JSON


@dataclass
class ShardRecord:
    """A shard's header (run identity, slice) and its sides."""

    index: int  # 1-based
    count: int
    run_key: str  # sha256 of everything every shard of one run must share
    identity: dict[str, Any]  # the parts of run_key, to say what differs
    item_keys: list[tuple[str, str]]  # (suite, id) of the shard's items
    config: dict[str, Any]  # the RunConfig as JSON
    arguments: dict[str, Any]
    packages: dict[str, str]
    stage_times: dict[str, float]
    sae_info: dict[str, Any]
    candidate: ShardSide
    baseline: ShardSide | None = None
    path: Path | None = None


_ARRAYS = ("scores", "n_tokens", "sse", "sum_sq", "sum_x", "l0_sum")


def _put_csr(arrays: dict[str, np.ndarray], prefix: str, csr: Any) -> None:
    csr = csr.tocsr()
    arrays[f"{prefix}.data"] = csr.data.astype(np.float32)
    arrays[f"{prefix}.indices"] = csr.indices.astype(np.int32)
    arrays[f"{prefix}.indptr"] = csr.indptr.astype(np.int64)
    arrays[f"{prefix}.shape"] = np.array(csr.shape, dtype=np.int64)


def _get_csr(z: Any, prefix: str) -> Any:
    import scipy.sparse as sp

    return sp.csr_matrix((z[f"{prefix}.data"], z[f"{prefix}.indices"], z[f"{prefix}.indptr"]),
                         shape=tuple(int(v) for v in z[f"{prefix}.shape"]))


def _side_header(side: ShardSide) -> dict[str, Any]:
    return {"info": side.info, "texts": side.texts, "reasons": side.reasons,
            "generated": side.generated, "act_keys": side.act_keys,
            "tokens_processed": side.tokens_processed, "cache_hits": side.cache_hits,
            "exemplar_texts": side.exemplar_texts, "has_exemplars": side.exemplars is not None,
            "samples": side.samples, "sample_scores": side.sample_scores,
            "sample_reasons": side.sample_reasons, "sample_tokens": side.sample_tokens,
            "costs": side.costs}


def write_shard(path: Path, shard: ShardRecord) -> Path:
    """Write the shard record atomically (compressed arrays plus a JSON header)."""
    arrays: dict[str, np.ndarray] = {}
    sides = {"candidate": shard.candidate, "baseline": shard.baseline}
    for name, side in sides.items():
        if side is None:
            continue
        for attr in _ARRAYS:
            arrays[f"{name}.{attr}"] = np.asarray(getattr(side, attr))
        _put_csr(arrays, f"{name}.saliency", side.saliency)
        if side.exemplars is not None:
            _put_csr(arrays, f"{name}.exemplars", side.exemplars)
    header = {
        "format": SHARD_FORMAT, "index": shard.index, "count": shard.count,
        "run_key": shard.run_key, "identity": shard.identity,
        "item_keys": [list(k) for k in shard.item_keys], "config": shard.config,
        "arguments": shard.arguments, "packages": shard.packages,
        "stage_times": shard.stage_times, "sae_info": shard.sae_info,
        "sides": {name: _side_header(side) for name, side in sides.items() if side is not None},
    }
    blob = json.dumps(header, sort_keys=True, ensure_ascii=False, allow_nan=False)
    arrays["header"] = np.frombuffer(blob.encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def _read_side(z: Any, name: str, head: dict[str, Any]) -> ShardSide:
    return ShardSide(
        info=head["info"], texts=list(head["texts"]), reasons=list(head["reasons"]),
        generated=int(head["generated"]), act_keys=list(head["act_keys"]),
        tokens_processed=int(head["tokens_processed"]), cache_hits=int(head["cache_hits"]),
        exemplar_texts=list(head["exemplar_texts"]),
        samples=list(head["samples"]), sample_scores=list(head["sample_scores"]),
        sample_reasons=list(head["sample_reasons"]), sample_tokens=list(head["sample_tokens"]),
        costs=list(head["costs"]),
        exemplars=_get_csr(z, f"{name}.exemplars") if head["has_exemplars"] else None,
        saliency=_get_csr(z, f"{name}.saliency"),
        **{attr: z[f"{name}.{attr}"] for attr in _ARRAYS},
    )


def read_shard(path: Path) -> ShardRecord:
    """Read one shard record; ResultsError (exit 2) naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError("shard record not found", path=path,
                           fix="pass the .npz files that `cg-gate run --shard I/N` wrote")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode("utf-8"))
            if header.get("format") != SHARD_FORMAT:
                raise ResultsError(
                    f"shard record format {header.get('format')!r} is not the one this cg-gate "
                    f"reads ({SHARD_FORMAT})", path=path, fix=SHARD_FIX)
            sides = header["sides"]
            return ShardRecord(
                index=int(header["index"]), count=int(header["count"]),
                run_key=header["run_key"], identity=header["identity"],
                item_keys=[(str(s), str(i)) for s, i in header["item_keys"]],
                config=header["config"], arguments=header["arguments"],
                packages=header["packages"], stage_times=header["stage_times"],
                sae_info=header["sae_info"],
                candidate=_read_side(z, "candidate", sides["candidate"]),
                baseline=(_read_side(z, "baseline", sides["baseline"])
                          if "baseline" in sides else None),
                path=path,
            )
    except ResultsError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"not a cg-gate shard record ({type(exc).__name__}: {exc})", path=path,
                           fix="pass the .npz files that `cg-gate run --shard I/N` wrote") from None


def check_shards(shards: Sequence[ShardRecord]) -> list[ShardRecord]:
    """The shards of one run, in index order: every index 1..N exactly once, one run identity.

    ResultsError (exit 2) naming the offending shard file for a duplicate, a missing index,
    a different shard count, or a shard of another run (what differs is named).
    """
    if not shards:
        raise ResultsError("no shard records to merge",
                           fix="pass every .npz file the shard jobs wrote")
    first = shards[0]
    by_index: dict[int, ShardRecord] = {}
    for shard in shards:
        if shard.count != first.count:
            raise ResultsError(
                f"shard {shard.index}/{shard.count} belongs to a run split {shard.count} ways, "
                f"but {first.path} was split {first.count} ways", path=shard.path,
                fix="merge the shards of one run, all made with the same --shard I/N count")
        if shard.run_key != first.run_key:
            diff = sorted(k for k in set(shard.identity) | set(first.identity)
                          if shard.identity.get(k) != first.identity.get(k))
            raise ResultsError(
                f"shard {shard.index}/{shard.count} is from a different run than {first.path} "
                f"(differs in: {', '.join(diff) or 'run identity'})", path=shard.path,
                fix="merge shards made from the same inputs, policy, models, SAE, settings and "
                    "cg-gate version")
        if shard.index in by_index:
            raise ResultsError(
                f"shard {shard.index}/{shard.count} is given twice (also {by_index[shard.index].path})",
                path=shard.path, fix="pass each shard record once")
        by_index[shard.index] = shard
    missing = [i for i in range(1, first.count + 1) if i not in by_index]
    if missing:
        names = ", ".join(f"{i}/{first.count}" for i in missing)
        raise ResultsError(f"shard(s) {names} missing: {len(by_index)} of {first.count} given",
                           path=first.path,
                           fix="pass every shard's record (download all the shard jobs' artifacts)")
    return [by_index[i] for i in range(1, first.count + 1)]


def shard_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a directory stands for the shard records below it."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("cg-gate-shard-*-of-*.npz"))
            if not found:
                raise ResultsError("no shard records (cg-gate-shard-*-of-*.npz) in this directory",
                                   path=p, fix="pass the directory the shard artifacts were "
                                               "downloaded to, or the .npz files")
            out.extend(found)
        else:
            out.append(p)
    return out
