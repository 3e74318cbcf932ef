"""Reading and writing results.json: atomic, versioned, NaN-free."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from cg_gate.errors import ResultsError
from cg_gate.record._schema import SCHEMA_VERSION, GateRun


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same directory and a rename.

    A reader never sees a half-written file; an interrupted write leaves the old file
    (or none) in place and no temp file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; reports are for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def dump_results(run: GateRun) -> str:
    """Serialise a run as stable, pretty JSON (the bytes of results.json).

    pydantic's serializer writes the text: the json module's indenting encoder is pure Python
    and took 0.7 s on a full demo record. pydantic would write NaN or an infinity as null, so
    the record is first checked with the json module's C encoder, which refuses them.
    """
    try:
        json.dumps(run.model_dump(mode="json"), allow_nan=False, separators=(",", ":"))
    except ValueError as exc:
        raise ValueError(f"a run record must not hold NaN or infinite numbers ({exc})") from None
    return run.model_dump_json(indent=2) + "\n"


def write_results(run: GateRun, path: Path) -> Path:
    """Stamp the deterministic digest and write results.json atomically."""
    run.digest = run.deterministic_digest()
    atomic_write_text(Path(path), dump_results(run))
    return Path(path)


def _migrate(data: dict, path: Path) -> dict:
    version = str(data.get("schema_version", ""))
    major = version.split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        shown = repr(version[:40]) if version else "(none)"  # file text, shown inert
        raise ResultsError(
            f"results schema version {shown} is not supported "
            f"(this cg-gate reads {SCHEMA_VERSION.split('.')[0]}.x)",
            path=path,
            fix="re-run `cg-gate run` with this version, or use the cg-gate that wrote the file",
        )
    return data


def read_results(path: Path) -> GateRun:
    """Load and validate a results.json, migrating older schema versions."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError("results file not found", path=path,
                           fix="pass the results.json that `cg-gate run` wrote") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno,
                           column=exc.colno, fix="regenerate the file with `cg-gate run`") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"not UTF-8 JSON text (byte {exc.start} cannot be decoded)", path=path,
                           fix="pass the results.json that `cg-gate run` wrote") from None
    except IsADirectoryError:
        raise ResultsError("is a directory, not a results file", path=path,
                           fix="pass the results.json inside it") from None
    if not isinstance(data, dict):
        raise ResultsError("not a cg-gate results object", path=path,
                           fix="pass the results.json that `cg-gate run` wrote")
    data = _migrate(data, path)
    try:
        return GateRun.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])[:200]
        raise ResultsError(f"invalid results record at {where!r}: {first['msg']}", path=path,
                           fix="regenerate the file with `cg-gate run`") from None
