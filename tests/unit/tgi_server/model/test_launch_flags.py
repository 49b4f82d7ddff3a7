"""TGI's `--revision`, `--trust-remote-code` and `--quantize`: what loading is given, and the
combinations refused before anything loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest

from tgi_server.model.launch_flags import (
    BITSANDBYTES,
    LaunchFacts,
    launch_facts,
    launch_problem,
    pretrained_options,
    quantization_config,
)
from tgi_server.settings import BackendSettings, Quantize

GPU = LaunchFacts(local_model=False, cuda=True, bitsandbytes_installed=True)
CPU = LaunchFacts(local_model=False, cuda=False, bitsandbytes_installed=True)


def settings(**fields: Any) -> BackendSettings:
    return BackendSettings(**{"model_id": "org/model", **fields})


def test_no_flag_is_no_problem_anywhere() -> None:
    assert launch_problem(settings(), CPU) is None
    assert launch_problem(BackendSettings(), CPU) is None


def test_the_flags_reach_every_from_pretrained_call() -> None:
    chosen = settings(revision="v1.2", trust_remote_code=True, hf_token="hf_x")
    assert pretrained_options(chosen) == {
        "token": "hf_x",
        "revision": "v1.2",
        "trust_remote_code": True,
    }
    assert pretrained_options(settings()) == {
        "token": None,
        "revision": None,
        "trust_remote_code": False,
    }


def test_a_revision_of_a_hub_model_is_fine() -> None:
    assert launch_problem(settings(revision="main"), CPU) is None


def test_a_revision_of_the_tiny_model_is_refused_saying_why() -> None:
    problem = launch_problem(BackendSettings(revision="v1"), CPU)
    assert problem is not None
    assert "`revision`(v1)" in problem
    assert "tiny model is built locally" in problem


def test_a_revision_of_a_local_folder_is_refused_saying_what_to_do() -> None:
    local = LaunchFacts(local_model=True, cuda=False, bitsandbytes_installed=False)
    problem = launch_problem(settings(model_id="/models/m", revision="abc123"), local)
    assert problem is not None
    assert "`model_id`(/models/m) is a local folder" in problem
    assert "check that revision out in the folder" in problem


@pytest.mark.parametrize("method", sorted(BITSANDBYTES))
def test_bitsandbytes_works_on_a_cuda_gpu_only(method: Quantize) -> None:
    assert launch_problem(settings(quantize=method), GPU) is None
    problem = launch_problem(settings(quantize=method), CPU)
    assert problem == (
        f"`quantize`({method}) needs a CUDA GPU (bitsandbytes' kernels) and this machine has"
        " none: drop --quantize to serve the model unquantized"
    )


def test_bitsandbytes_needs_its_package() -> None:
    missing = LaunchFacts(local_model=False, cuda=True, bitsandbytes_installed=False)
    problem = launch_problem(settings(quantize="bitsandbytes"), missing)
    assert problem is not None
    assert "pip install bitsandbytes" in problem


@pytest.mark.parametrize("method", sorted(set(get_args(Quantize)) - set(BITSANDBYTES)))
def test_tgis_other_methods_are_refused_naming_the_method(method: Quantize) -> None:
    problem = launch_problem(settings(quantize=method), GPU)
    assert problem is not None
    assert problem.startswith(f"`quantize`({method}) is not supported by this backend")
    assert "bitsandbytes-nf4" in problem


def test_the_facts_of_this_machine(tmp_path: Path) -> None:
    assert launch_facts(settings(model_id=str(tmp_path))).local_model is True
    assert launch_facts(settings(model_id="org/model")).local_model is False
    assert launch_facts(BackendSettings()).local_model is False
    assert launch_facts(settings()).cuda is False  # torch is not even asked without --quantize


def test_bitsandbytes_methods_become_transformers_configs() -> None:
    import torch

    eight = quantization_config(settings(quantize="bitsandbytes"), torch.bfloat16)
    assert (eight.load_in_8bit, eight.load_in_4bit) == (True, False)
    for method, kind in (("bitsandbytes-nf4", "nf4"), ("bitsandbytes-fp4", "fp4")):
        four = quantization_config(settings(quantize=method), torch.bfloat16)
        assert (four.load_in_4bit, four.bnb_4bit_quant_type) == (True, kind)
        assert four.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization_config(settings(), torch.float32) is None
