"""Progress: a bar only on a terminal, one plain line per N% in logs."""

import io

from pinnsiren.progress import LineProgress, progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_log_gets_a_line_every_ten_percent_and_no_carriage_returns(monkeypatch):
    monkeypatch.delenv("PINNSIREN_NO_PROGRESS", raising=False)
    buf = io.StringIO()
    bar = progress(range(200), desc="train", file=buf)
    assert isinstance(bar, LineProgress)
    for i in bar:
        bar.set_postfix({"pde": f"{i:.1e}"})
    text = buf.getvalue()
    assert "\r" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("train: 20/200 (10%)") and "pde=1.9e+01" in lines[0]
    assert lines[-1].startswith("train: 200/200 (100%)")


def test_uneven_total_still_reports_every_step_past_each_mark(monkeypatch):
    monkeypatch.delenv("PINNSIREN_NO_PROGRESS", raising=False)
    buf = io.StringIO()
    list(progress(range(7), desc="x", file=buf, log_percent=25))
    # marks 25/50/75/100 % of 7 are passed at steps 2 (28%), 4 (57%), 6 (85%), 7
    assert [ln.split()[1] for ln in buf.getvalue().splitlines()] == ["2/7", "4/7", "6/7", "7/7"]


def test_terminal_gets_tqdm(monkeypatch):
    monkeypatch.delenv("PINNSIREN_NO_PROGRESS", raising=False)
    buf = _Tty()
    bar = progress(range(5), desc="t", file=buf)
    assert not isinstance(bar, LineProgress)
    list(bar)
    assert "\r" in buf.getvalue()


def test_disabled_by_flag_and_by_environment(monkeypatch):
    buf = io.StringIO()
    bar = progress(range(50), file=buf, disable=True)
    for _ in bar:
        bar.set_postfix(loss="1")
    monkeypatch.setenv("PINNSIREN_NO_PROGRESS", "1")
    tty = _Tty()
    list(progress(range(50), file=tty))
    assert buf.getvalue() == "" and tty.getvalue() == ""
