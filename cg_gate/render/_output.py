"""Writing an output set: every report of one run lands in `--out` together, or none does.

The files are rendered in memory, written into a staging directory beside `--out` (same
filesystem, so the final moves are renames; inside `--out`, hidden, when only `--out` itself
accepts new files), and moved into place only once every file is written. A failure before that point (a renderer raising, a full disk) leaves `--out` as it
was; a failure while moving puts the previous files back. `--out` therefore holds either the
previous complete set or the new complete set, never a mix.

What counts as the set: the files cg-gate writes (`set_file_names()`: results.json, the
reports of every format, activations.npz). Other files in `--out` are never touched. A file of
the set that the new run does not write (say report.pdf when the run asked for
`--format md,json`) is removed, because it would describe another run, unless the set
already in `--out` is from the same run, as its results.json (or, without one, its
results.sarif) records it: `cg-gate report` re-rendering one run into its own directory
keeps that run's other files. A symbolic link with a set file's name
is replaced as a link; its target is never written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from cg_gate.errors import ConfigError, GateError

#: Writes one file of the set at the path it is given (for files not rendered to bytes).
FileWriter = Callable[[Path], None]

_FIX_WRITABLE = ("pass --out a directory this user can write (it is created when missing), "
                 "on a filesystem with free space")


def set_file_names() -> tuple[str, ...]:
    """Names of the files an output set may hold: every format's file and activations.npz."""
    from cg_gate.record import ACTIVATIONS_FILE
    from cg_gate.render._registry import RENDERERS

    return (*(r.filename for r in RENDERERS.values()), ACTIVATIONS_FILE)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(directory: Path) -> OSError | None:
    """None when a new file can be made in `directory`, else the error making one gave."""
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".cg-gate-probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return exc
    return None


def _refuse(directory: Path, out: Path, exc: OSError) -> ConfigError:
    return ConfigError(f"cannot write the reports: {directory} is not writable "
                       f"({exc.strerror or exc})", path=out, fix=_FIX_WRITABLE)


def check_writable(out_dir: str | os.PathLike[str]) -> Path:
    """Check, without writing any report, that an output set can be written to `out_dir`.

    `out_dir` must be a directory that accepts new files, or not exist yet and sit where a
    directory can be made (its nearest existing ancestor accepts new files). Meant to run
    before any model loads, so a bad `--out` costs seconds, not a whole run. Raises
    `ConfigError` (exit 2) naming the directory; returns `out_dir`. Creates nothing.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"the output directory {out} is a file", path=out,
                          fix="pass --out a directory (it is created when missing)")
    if out.is_dir():
        if (exc := _writable(out)) is not None:
            raise _refuse(out, out, exc)
        return out
    holder = _nearest_existing(out.absolute().parent)
    if not holder.is_dir():
        raise ConfigError(f"cannot create the output directory {out}: {holder} is a file",
                          path=out, fix=_FIX_WRITABLE)
    if (exc := _writable(holder)) is not None:
        raise _refuse(holder, out, exc)
    return out


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _file_mode() -> int:
    """0666 less the process umask: the mode `open()` would have given a new file."""
    return 0o666 & ~_umask()


def _recorded_run_id(out: Path) -> str | None:
    """The run the set already in `out` belongs to, as its results.json (or, when the set
    has none, its results.sarif) records it; None when neither says."""
    for name, where in (("results.json", ("manifest", "run_id")),
                        ("results.sarif", ("runs", 0, "properties", "run_id"))):
        path = out / name
        try:
            if path.is_symlink() or not path.is_file():
                continue
            value = json.loads(path.read_text(encoding="utf-8"))
            for key in where:
                value = value[key]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None
        return value if isinstance(value, str) else None
    return None


def _stage(staging: Path, files: Mapping[str, bytes | FileWriter]) -> None:
    mode = _file_mode()
    for name, content in files.items():
        path = staging / name
        if callable(content):
            content(path)
        else:
            with open(path, "xb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(path, mode)


def _swap(out: Path, staging: Path, names: list[str], stale: list[str]) -> None:
    """Move the staged `names` into `out`, first moving the old set files aside; undo on error."""
    for name in [*names, *stale]:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            raise ConfigError(f"{target} is a directory where cg-gate writes its {name}",
                              path=target, fix="move that directory away or pass another --out")
    backup = Path(tempfile.mkdtemp(dir=staging.parent, prefix=f".{out.name}.old-"))
    moved: list[str] = []
    placed: list[str] = []
    try:
        for name in [*names, *stale]:
            if os.path.lexists(out / name):
                os.replace(out / name, backup / name)
                moved.append(name)
        for name in names:
            os.replace(staging / name, out / name)
            placed.append(name)
    except BaseException:
        for name in placed:
            (out / name).unlink(missing_ok=True)
        for name in moved:
            os.replace(backup / name, out / name)
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def write_output_set(out_dir: str | os.PathLike[str], files: Mapping[str, bytes | FileWriter],
                     *, run_id: str | None = None) -> dict[str, Path]:
    """Write `files` (name → bytes, or a writer called with the path) to `out_dir` as one set.

    All or nothing, as the module says: nothing in `out_dir` changes unless every file was
    written. Set files of an earlier run that this set does not include are removed, unless
    the set in `out_dir` is from `run_id` (see `_recorded_run_id`). The staging directory sits beside `out_dir`, or
    inside it (hidden) when only `out_dir` itself accepts new files; either way on the same
    filesystem, so the final moves are renames (a symlinked `out_dir` is followed first). An
    OSError (full disk, permissions) becomes a `GateError` (exit 2) saying the previous
    reports were kept. Returns name → final path.
    """
    out = Path(out_dir)
    known = set(set_file_names())
    unknown = sorted(set(files) - known)
    if unknown:
        raise ValueError(f"not files of an output set: {', '.join(unknown)}")
    check_writable(out)
    real = out.resolve()
    real.parent.mkdir(parents=True, exist_ok=True)
    inside = real.is_dir() and _writable(real.parent) is not None
    staging = Path(tempfile.mkdtemp(dir=real if inside else real.parent,
                                    prefix=f".{real.name}.new-"))
    names = list(files)
    try:
        _stage(staging, files)
        if not real.exists():
            try:
                os.chmod(staging, 0o777 & ~_umask())  # mkdtemp made it 0700
                os.rename(staging, real)
                return {name: out / name for name in names}
            except OSError:
                if not real.is_dir():  # not a race with another writer creating it
                    raise
        same_run = run_id is not None and _recorded_run_id(real) == run_id
        stale = [] if same_run else sorted(known - set(files))
        _swap(real, staging, names, stale)
    except OSError as exc:
        raise GateError(f"could not write the reports to {out} ({exc.strerror or exc}); "
                        "the reports already there were left as they were",
                        path=out, fix=_FIX_WRITABLE) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: out / name for name in names}
