"""Settings for training on Hugging Face Jobs (``tracetune run CONFIG --on hf-jobs``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_IMAGE = "pytorch/pytorch:2.7.1-cuda12.6-cudnn9-runtime"


class JobsConfig(BaseModel):
    """Where and how the train + sweep stages run remotely.

    Secrets are listed by NAME only; their values are read from the local
    environment at submission and sent to the Jobs API, never printed or
    written to the run directory.
    """

    model_config = ConfigDict(extra="forbid")

    flavor: str = Field("a10g-large", description="Jobs hardware flavor, e.g. cpu-basic, t4-small, a10g-large, a100-large, h100.")
    timeout: str = Field("6h", description="Maximum job duration (e.g. 90m, 6h); the job is stopped after it.")
    image: str = Field(DEFAULT_IMAGE, description="Docker image with Python and CUDA; tracetune is pip-installed into it.")
    namespace: str | None = Field(None, description="User or organisation that owns the job and the artifacts repo (default: the token's user).")
    artifacts_repo: str | None = Field(
        None,
        description="Private dataset repo that carries the prepared dataset in and the adapters out "
        "(default: NAMESPACE/tracetune-RUNNAME).",
    )
    secrets: list[str] = Field(default_factory=lambda: ["HF_TOKEN"], description="Names of local environment variables passed to the job as secrets.")
    install: str = Field(
        "wheel",
        description="How the job installs tracetune: 'wheel' uploads a wheel built from this exact checkout; "
        "'pypi' installs tracetune==<this version> from PyPI.",
    )
    poll_seconds: float = Field(10.0, gt=0, description="Seconds between job status checks.")
    max_transient_errors: int = Field(8, ge=0, description="Consecutive network/5xx errors tolerated while following a job.")

    @field_validator("install")
    @classmethod
    def _install_mode(cls, value: str) -> str:
        if value not in ("wheel", "pypi"):
            raise ValueError("install must be 'wheel' or 'pypi'")
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name.isidentifier() or not name.isupper():
                raise ValueError("secrets holds environment variable NAMES (like HF_TOKEN), not values")
        return names
