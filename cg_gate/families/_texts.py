"""Exemplar and reference text files: JSONL of `{"text": ...}` (or bare JSON strings).

`pkg:` paths name files shipped inside `cg_gate/data` (e.g. `pkg:exemplars/refusal.jsonl`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from cg_gate.errors import PolicyError
from cg_gate.jsonl import jsonl_rows

PKG_PREFIX = "pkg:"
DEFAULT_REFERENCE = "pkg:reference/neutral.jsonl"
"""The shipped neutral reference set exemplar ratios are measured against."""


def data_dir() -> Path:
    """The `cg_gate/data` directory shipped with the package."""
    return Path(str(resources.files("cg_gate"))) / "data"


def resolve_text_path(spec: str, base: Path | None, *, allow_external: bool = True) -> Path:
    """Turn a policy's text-file path into a file path.

    `pkg:rel/path` → `cg_gate/data/rel/path`; a relative path is taken relative to `base`
    (the policy file's directory). Existence is not checked here.

    With `allow_external=False` (what policies get unless `--allow-external-paths`), the
    path must stay inside `base`'s directory tree, or inside `cg_gate/data` for `pkg:`:
    absolute paths, `~`, and `..` or symbolic links leading out are refused with
    `ValueError` saying why.
    """
    if spec.startswith(PKG_PREFIX):
        root = data_dir()
        path = root / spec[len(PKG_PREFIX):].lstrip("/")
        if not allow_external and not _inside(path, root):
            raise ValueError(f"'{spec}' leads out of the files shipped with cg-gate")
        return path
    raw = Path(spec)
    if not allow_external:
        if raw.is_absolute() or spec.startswith("~") or (raw.drive and not raw.root) \
                or base is None:
            raise ValueError(f"'{spec}' is not a path relative to the policy file")
        path = base / raw
        if not _inside(path, base):
            raise ValueError(f"'{spec}' leads out of the policy file's directory")
        return path
    path = raw.expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, with `..` and symbolic links resolved, lies in `root`'s tree."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


SPLITS = ("fit", "heldout")
"""Exemplar splits: `fit` texts choose a family's members, `heldout` texts only measure them."""


def load_texts(path: str | Path) -> list[str]:
    """Read a JSONL text file: one `{"text": "..."}` object or JSON string per line.

    Blank lines and lines starting with `#` are skipped. Raises `PolicyError` naming the
    file and line of anything else, and when the file holds no text.
    """
    return [text for text, _ in load_text_records(path)]


def load_text_records(path: str | Path) -> list[tuple[str, str | None]]:
    """`load_texts` with each text's `split` (`fit`, `heldout`, or None when not given)."""
    src = Path(path)
    try:
        text = src.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PolicyError("text file not found", path=src,
                          fix="check the path (relative paths are read from the policy's folder; "
                              "'pkg:' names files shipped in cg_gate/data)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read the text file ({exc})", path=src,
                          fix="save it as UTF-8 JSONL") from None
    texts: list[tuple[str, str | None]] = []
    for n, obj in jsonl_rows(text, src, error=PolicyError, message="not valid JSON ({msg})",
                             fix='write one {"text": "..."} object per line', comments=True):
        split = None
        if isinstance(obj, dict):
            split = obj.get("split")
            if split is not None and split not in SPLITS:
                raise PolicyError(f"split {split!r} is neither 'fit' nor 'heldout'", path=src,
                                  line=n, fix='write "split": "fit" or "split": "heldout", or leave '
                                              "it out")
            obj = obj.get("text")
        if not isinstance(obj, str) or not obj.strip():
            raise PolicyError("line holds no text", path=src, line=n,
                              fix='write one {"text": "..."} object per line, text not empty')
        texts.append((obj, split))
    if not texts:
        raise PolicyError("the text file holds no texts", path=src,
                          fix='add {"text": "..."} lines')
    return texts
