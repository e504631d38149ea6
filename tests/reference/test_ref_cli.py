import argparse

import h5py
import numpy as np
import pytest

from reference.cli import add_subcommands, main
from reference.grid import GridField


def test_subcommands_register_and_write(tmp_path):
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["helmholtz", "--n", "48", "--k", "10", "--scheme", "5", "--out", str(tmp_path)])
    assert args.func(args) == 0
    f = GridField.from_hdf5(tmp_path / "helmholtz.h5", "u")
    assert f.values.shape == (48, 48) and np.iscomplexobj(f.values) and f.params["scheme"] == 5
    assert (tmp_path / "helmholtz.png").stat().st_size > 1000


def test_wave_and_poisson_commands(tmp_path):
    assert main(["wave", "--n", "33", "--times", "0", "0.1", "--out", str(tmp_path)]) == 0
    with h5py.File(tmp_path / "wave.h5") as f:
        assert set(f) == {"t0", "t1"}
    assert main(["poisson", "--n", "33", "--bc", "neumann", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "poisson.png").exists()


def test_help_and_bad_option(capsys):
    with pytest.raises(SystemExit):
        main(["helmholtz", "--help"])
    assert "--scheme" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["helmholtz", "--source", "nonsense"])
    with pytest.raises(SystemExit, match="does not apply"):
        main(["poisson", "--bc", "neumann", "--method", "dst"])
