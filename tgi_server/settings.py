"""The backend's settings: one typed object, built once at start-up from flags and environment.

TGI's variable names are kept (`MODEL_ID`, `HF_TOKEN`, `PORT`, `MAX_INPUT_TOKENS`, ...: the
launcher's flag in upper snake case) so TGI templates work unchanged; our own start with `TGIS_`.
`HOSTNAME` is deliberately not read: Docker sets it to the container id, which is not an address.
Every field names its variable (common.settings: only those names are read, exactly as
spelled); docs/backend.md's table lists them all, and a test compares the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, ConfigDict, Field, SecretStr, field_validator, model_validator

from common.settings import ServiceSettings
from httpedge.connections import ConnectionLimits, limit_field

__all__ = ["DEFAULT_CACHE_DIR", "BackendSettings", "Quantize"]

DEFAULT_CACHE_DIR = Path("~/.cache/tgi-serverless")

Quantize = Literal[
    "awq",
    "compressed-tensors",
    "eetq",
    "exl2",
    "gptq",
    "marlin",
    "bitsandbytes",
    "bitsandbytes-nf4",
    "bitsandbytes-fp4",
    "fp8",
]
"""Every value of TGI's `--quantize`, so that a TGI template parses; which of them this backend
can apply, and on what device, is `tgi_server.model.launch_flags`'s to say."""


class BackendSettings(ServiceSettings):
    """Everything `tgi-serverless backend` can be told. Flags win over the environment."""

    model_config = ConfigDict(protected_namespaces=())

    model_id: str | None = Field(
        default=None,
        validation_alias="MODEL_ID",
        description="hub id or local path; None serves the built-in tiny model",
    )
    hf_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
    )
    revision: str | None = Field(
        default=None,
        validation_alias="REVISION",
        description="the hub revision (branch, tag or commit) of MODEL_ID; refused for a local "
        "folder or the built-in tiny model, which have none",
    )
    trust_remote_code: bool = Field(
        default=False,
        validation_alias="TRUST_REMOTE_CODE",
        description="let transformers run the model's own Python code (its config's auto_map)",
    )
    quantize: Quantize | None = Field(
        default=None,
        validation_alias="QUANTIZE",
        description="quantize the weights while loading: bitsandbytes (8-bit), "
        "bitsandbytes-nf4 or bitsandbytes-fp4 (4-bit), on a CUDA GPU",
    )
    host: str = Field(default="127.0.0.1", validation_alias="TGIS_BACKEND_HOST")
    port: int = Field(default=5001, ge=1, le=65535, validation_alias="PORT")
    max_input_tokens: int = Field(default=1024, ge=1, validation_alias="MAX_INPUT_TOKENS")
    max_total_tokens: int = Field(default=2048, ge=2, validation_alias="MAX_TOTAL_TOKENS")
    max_concurrent_requests: int = Field(
        default=128, ge=1, validation_alias="MAX_CONCURRENT_REQUESTS"
    )
    max_stop_sequences: int = Field(default=4, ge=0, validation_alias="MAX_STOP_SEQUENCES")
    max_best_of: int = Field(default=2, ge=1, validation_alias="MAX_BEST_OF")
    max_top_n_tokens: int = Field(default=5, ge=0, validation_alias="MAX_TOP_N_TOKENS")
    max_client_batch_size: int = Field(default=4, ge=1, validation_alias="MAX_CLIENT_BATCH_SIZE")
    validation_workers: int = Field(default=2, ge=1, validation_alias="VALIDATION_WORKERS")
    scheduler: Literal["batching", "sequential"] = Field(
        default="batching",
        validation_alias="TGIS_SCHEDULER",
        description="continuous batching, or one request at a time",
    )
    engine: Literal["shard", "thread"] = Field(
        default="shard",
        validation_alias="TGIS_ENGINE",
        description=(
            "where the model runs: a model-server process of its own (TGI's shard), or a thread"
            " of the HTTP server's process"
        ),
    )
    max_batch_prefill_tokens: int | None = Field(
        default=None,
        ge=1,
        validation_alias="MAX_BATCH_PREFILL_TOKENS",
        description="most tokens one prefill may process; None: max(4096, max_input_tokens + 50)",
    )
    max_batch_total_tokens: int | None = Field(
        default=None,
        ge=1,
        validation_alias="MAX_BATCH_TOTAL_TOKENS",
        description=(
            "most tokens a running batch may hold; None: TGI's default for a padded model,"
            " max(16000, max_total_tokens, max_batch_prefill_tokens)"
        ),
    )
    max_batch_size: int | None = Field(default=None, ge=1, validation_alias="MAX_BATCH_SIZE")
    waiting_served_ratio: float = Field(
        default=0.3,
        ge=0.0,
        validation_alias="WAITING_SERVED_RATIO",
        description="TGI's launcher default (its router's own is 1.2)",
    )
    max_waiting_tokens: int = Field(default=20, ge=0, validation_alias="MAX_WAITING_TOKENS")
    compat_return_full_text: bool = Field(
        default=False,
        validation_alias="TGIS_COMPAT_RETURN_FULL_TEXT",
        description="`return_full_text` when `POST /` does not say: false, the generated text "
        "alone, which huggingface_hub's and outlines' users expect (TGI: true for "
        "text-generation models)",
    )
    ignore_eos: bool = Field(
        default=False,
        validation_alias="TGIS_IGNORE_EOS",
        description="never stop on EOS (benchmarks: every request runs its full length)",
    )
    payload_limit: int = Field(default=2_000_000, ge=1024, validation_alias="PAYLOAD_LIMIT")
    header_timeout_s: float = limit_field("TGIS_BACKEND_", "header_timeout_s")
    body_timeout_s: float = limit_field("TGIS_BACKEND_", "body_timeout_s")
    send_timeout_s: float = limit_field("TGIS_BACKEND_", "send_timeout_s")
    keepalive_timeout_s: float = limit_field("TGIS_BACKEND_", "keepalive_timeout_s")
    max_connections: int = limit_field("TGIS_BACKEND_", "max_connections")
    max_header_bytes: int = limit_field("TGIS_BACKEND_", "max_header_bytes")
    compute_type: str | None = Field(
        default=None,
        validation_alias="COMPUTE_TYPE",
        description="value of the x-compute-type header; None derives it from the device",
    )
    cache_dir: Path = Field(default=DEFAULT_CACHE_DIR, validation_alias="TGIS_CACHE_DIR")
    json_output: bool = Field(default=False, validation_alias="JSON_OUTPUT")
    shutdown_timeout_s: float = Field(
        default=90.0, ge=0.0, validation_alias="GRACEFUL_TERMINATION_TIMEOUT"
    )

    @field_validator("model_id")
    @classmethod
    def _blank_means_builtin(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("revision")
    @classmethod
    def _blank_means_default_revision(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("cache_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _check_token_limits(self) -> BackendSettings:
        if self.max_input_tokens >= self.max_total_tokens:
            raise ValueError(
                f"`max_input_tokens`({self.max_input_tokens}) must be < "
                f"`max_total_tokens`({self.max_total_tokens})"
            )
        if self.batch_prefill_tokens < self.max_input_tokens:
            raise ValueError(
                f"`max_batch_prefill_tokens`({self.batch_prefill_tokens}) must be >= "
                f"`max_input_tokens`({self.max_input_tokens})"
            )
        if self.batch_total_tokens < self.max_total_tokens:
            raise ValueError(
                f"`max_batch_total_tokens`({self.batch_total_tokens}) must be >= "
                f"`max_total_tokens`({self.max_total_tokens})"
            )
        return self

    @property
    def connection_limits(self) -> ConnectionLimits:
        """What one client's connections may take of this service (`httpedge.connections`)."""
        return ConnectionLimits.of(self)

    @property
    def batch_prefill_tokens(self) -> int:
        """`max_batch_prefill_tokens`, or its default for these token limits."""
        if self.max_batch_prefill_tokens is not None:
            return self.max_batch_prefill_tokens
        return max(4096, self.max_input_tokens + 50)

    @property
    def batch_total_tokens(self) -> int:
        """`max_batch_total_tokens`, or its default for these token limits."""
        if self.max_batch_total_tokens is not None:
            return self.max_batch_total_tokens
        return max(16_000, self.max_total_tokens, self.batch_prefill_tokens)
