"""Result files record how they were made (pinnsiren.io.provenance)."""

import re

import torch

from pinnsiren.io import provenance, read_result, write_result


def test_provenance_reads_the_run_and_the_nested_config(tmp_path):
    cfg = {"arch": "siren", "train": {"seed": 3, "device": "cpu", "backward_precision": "bfloat16"}}
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = write_result(tmp_path / "r.h5", kind="test", config=cfg)
    finally:
        torch.set_num_threads(old)
    a = read_result(path)["attrs"]
    assert a["threads"] == 1 and a["world_size"] == 1
    assert a["seed"] == 3 and a["device"] == "cpu" and a["backward_precision"] == "bfloat16"
    assert a["default_dtype"] == "float32" and a["torch_version"] == torch.__version__
    assert a["commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", a["commit"])
    assert "seed" not in provenance({"arch": "siren"})  # only what the config names


def test_world_size_follows_the_launcher(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    assert provenance({})["world_size"] == 4
