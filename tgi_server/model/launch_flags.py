"""TGI's launcher flags that choose how the model loads: `--revision`, `--trust-remote-code` and
`--quantize`, as transformers' loading options, and the combinations this backend refuses.

A refusal is found before anything loads (`launch_problem`, from `LaunchFacts` gathered by
`launch_facts`), so the process ends at once with a message naming the flag and what to do:
- `--revision` with the built-in tiny model or a local folder: neither has revisions (the tiny
  model is built here; a folder is loaded as it is on disk), so the flag could only be ignored;
- `--quantize` with a method transformers does not apply while loading (TGI's kernels for
  pre-quantized checkpoints: a checkpoint quantized ahead of time loads as its config says,
  without the flag);
- `--quantize bitsandbytes*` without a CUDA GPU or without the bitsandbytes package.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tgi_server.settings import BackendSettings, Quantize

__all__ = [
    "BITSANDBYTES",
    "LaunchFacts",
    "asks_the_device",
    "launch_facts",
    "launch_problem",
    "pretrained_options",
    "quantization_config",
]

BITSANDBYTES: dict[Quantize, dict[str, Any]] = {
    "bitsandbytes": {"load_in_8bit": True},
    "bitsandbytes-nf4": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"},
    "bitsandbytes-fp4": {"load_in_4bit": True, "bnb_4bit_quant_type": "fp4"},
}
"""The `--quantize` methods applied here, as transformers' `BitsAndBytesConfig` arguments."""


@dataclass(frozen=True)
class LaunchFacts:
    """What the flags' refusals depend on, outside the settings."""

    local_model: bool
    """MODEL_ID names a folder on this machine (transformers then loads it as it is)."""
    cuda: bool
    bitsandbytes_installed: bool


def launch_facts(settings: BackendSettings) -> LaunchFacts:
    """The facts `launch_problem` needs, looked up on this machine. torch is imported only when
    `--quantize` asks for bitsandbytes (the only flag that depends on the device)."""
    local = settings.model_id is not None and Path(settings.model_id).expanduser().is_dir()
    cuda = False
    if asks_the_device(settings):
        import torch

        cuda = bool(torch.cuda.is_available())
    installed = importlib.util.find_spec("bitsandbytes") is not None
    return LaunchFacts(local_model=local, cuda=cuda, bitsandbytes_installed=installed)


def asks_the_device(settings: BackendSettings) -> bool:
    """Whether `launch_facts` asks CUDA about this machine's GPU for `settings` (after which a
    process forked from this one could not use CUDA)."""
    return settings.quantize in BITSANDBYTES


def launch_problem(settings: BackendSettings, facts: LaunchFacts) -> str | None:
    """Why these flags cannot be honoured here, in a sentence naming the flag; None if they can."""
    return _revision_problem(settings, facts) or _quantize_problem(settings.quantize, facts)


def _revision_problem(settings: BackendSettings, facts: LaunchFacts) -> str | None:
    revision = settings.revision
    if revision is None:
        return None
    if settings.model_id is None:
        return (
            f"`revision`({revision}) selects a revision of a hub model, and the built-in tiny"
            " model is built locally and has none: drop --revision ($REVISION)"
        )
    if facts.local_model:
        return (
            f"`revision`({revision}) selects a revision of a hub model, and `model_id`"
            f"({settings.model_id}) is a local folder, which is loaded as it is on disk: check"
            " that revision out in the folder and drop --revision ($REVISION)"
        )
    return None


def _quantize_problem(method: Quantize | None, facts: LaunchFacts) -> str | None:
    if method is None:
        return None
    if method not in BITSANDBYTES:
        return (
            f"`quantize`({method}) is not supported by this backend (transformers): it quantizes"
            f" with {', '.join(BITSANDBYTES)}; a checkpoint quantized ahead of time (GPTQ, AWQ,"
            " compressed-tensors, ...) loads as its config.json says, without --quantize"
        )
    if not facts.cuda:
        return (
            f"`quantize`({method}) needs a CUDA GPU (bitsandbytes' kernels) and this machine has"
            " none: drop --quantize to serve the model unquantized"
        )
    if not facts.bitsandbytes_installed:
        return (
            f"`quantize`({method}) needs the bitsandbytes package, which is not installed:"
            " pip install bitsandbytes"
        )
    return None


def pretrained_options(settings: BackendSettings) -> dict[str, Any]:
    """The keyword arguments of every `from_pretrained` call (tokenizer, config, model)."""
    token = settings.hf_token.get_secret_value() if settings.hf_token else None
    return {
        "token": token,
        "revision": settings.revision,
        "trust_remote_code": settings.trust_remote_code,
    }


def quantization_config(settings: BackendSettings, compute_dtype: Any) -> Any:
    """transformers' `BitsAndBytesConfig` for `--quantize`, computing in `compute_dtype`;
    None without the flag. `launch_problem` has refused the methods not in `BITSANDBYTES`."""
    if settings.quantize is None:
        return None
    import transformers

    arguments = BITSANDBYTES[settings.quantize]
    if arguments.get("load_in_4bit"):
        arguments = {**arguments, "bnb_4bit_compute_dtype": compute_dtype}
    config_class: Any = transformers.BitsAndBytesConfig  # untyped in transformers
    return config_class(**arguments)
