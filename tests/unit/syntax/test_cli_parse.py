"""`pybuild parse`: formats, input selection, and error reporting (run as a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import FIXTURES, run_pybuild


def test_readme_quick_start_command() -> None:
    proc = run_pybuild("parse", "-f", str(FIXTURES / "example" / "Dockerfile"),
                       "--format", "buildkit")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == '(arg "BASE=localhost/pybuild/busybox:latest")'
    assert lines[-1].startswith('(cmd "sh" "-c" ')
    assert len(lines) == 11


def test_default_file_and_stdin_and_json(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM a\nONBUILD COPY --chown=1 x y\n")
    by_default = run_pybuild("parse", "--format", "json", cwd=tmp_path)
    from_stdin = run_pybuild("parse", "--format", "json", "-",
                             input="FROM a\nONBUILD COPY --chown=1 x y\n")
    assert by_default.returncode == 0, by_default.stderr
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert by_default.stdout == from_stdin.stdout
    data = json.loads(by_default.stdout)
    assert [sorted(o) for o in data] == [sorted(["cmd", "sub_cmd", "json", "flags", "value",
                                                 "start_line", "end_line", "original",
                                                 "heredocs"])] * 2
    assert data[1] | {} == {"cmd": "ONBUILD", "sub_cmd": "COPY", "json": False,
                            "flags": ["--chown=1"], "value": ["x", "y"], "start_line": 2,
                            "end_line": 2, "original": "ONBUILD COPY --chown=1 x y",
                            "heredocs": []}


def test_error_is_located_with_caret_and_exit_code_3(tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("FROM a\nRUN [\"sh\", [\"nested\"]]\n")
    proc = run_pybuild("parse", "-f", str(df))
    assert proc.returncode == 3
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == (f"{df}:2:5: error PB1004: when using JSON array syntax, arrays must "
                        "be comprised of strings only")
    assert lines[1].endswith('| RUN ["sh", ["nested"]]')
    assert lines[2].endswith("|     ^")
    assert lines[3].startswith("hint: ")
    assert "Traceback" not in proc.stderr


def test_strict_flag_applies_instruction_rules() -> None:
    lenient = run_pybuild("parse", "-", input="FROM a\nFOO bar\n")
    strict = run_pybuild("parse", "--strict", "-", input="FROM a\nFOO bar\n")
    assert (lenient.returncode, lenient.stdout) == (0, '(from "a")\n(foo "")\n')
    assert strict.returncode == 3 and "error PB1101: unknown instruction: FOO" in strict.stderr
    assert strict.stderr.startswith("-:2:1: ")


def test_missing_file(tmp_path: Path) -> None:
    proc = run_pybuild("parse", "-f", str(tmp_path / "nope"))
    assert proc.returncode == 3
    assert proc.stderr.startswith(f"error: cannot read Dockerfile {tmp_path / 'nope'}")
    assert "Traceback" not in proc.stderr


def test_non_utf8_bytes_round_trip(tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_bytes(b"FROM a\nRUN echo \xff\n")
    proc = run_pybuild("parse", "-f", str(df))
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[1] == '(run "echo \\xff")'


def test_warnings_go_to_stderr_and_exit_code_stays_0() -> None:
    proc = run_pybuild("parse", "-", input="FROM a\nRUN x \\\n\n  y\n")
    assert proc.returncode == 0
    assert proc.stdout == '(from "a")\n(run "x   y")\n'
    assert proc.stderr.startswith("-:3:1: warning PB1201: empty continuation line")
