"""`pinnsiren solve helmholtz`: SIGKILL mid-training, then --resume continues from the last checkpoint."""

import os
import signal
import subprocess
import sys
import time

from pinnsiren.io import read_result

ARGS = ["solve", "helmholtz", "--k", "5", "--source-var", "1e-2", "--hidden", "16", "--layers", "1",
        "--points", "64", "--source-points", "16", "--grid-n", "48", "--steps", "3000",
        "--checkpoint-every", "100", "--eval-every", "1000"]


def test_sigkill_then_resume(tmp_path):
    env = dict(os.environ, PINNSIREN_NO_PROGRESS="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "pinnsiren", *ARGS, "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = tmp_path / "checkpoint_siren" / "checkpoint.pt"
    deadline = time.time() + 240
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, "the run ended before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert ckpt.exists() and not (tmp_path / "helmholtz.h5").exists()
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    r = read_result(tmp_path / "helmholtz.h5")
    resumed = r["metrics"]["resumed_from_siren"]
    assert resumed >= 100 and resumed % 100 == 0
    steps = r["history"]["siren/step"]
    assert steps[-1] == 3000 and steps[0] == 10  # history carried over from before the kill
    assert list(r["history"]["siren/eval_step"]) == [1000, 2000, 3000]
