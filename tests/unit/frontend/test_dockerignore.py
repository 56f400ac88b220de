"""The patternmatcher rules the corpus states in words, and which ignore file applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.frontend.dockerignore import find_ignore_file, load_ignore, read_ignore
from builder.patternmatcher import BadPattern, PatternMatcher, go_clean, go_filepath_match


def test_patterns_trimmed_and_empty_dropped() -> None:
    pm = PatternMatcher(["docs", "config", ""])
    assert [p.cleaned for p in pm.patterns] == ["docs", "config"]
    assert not pm.exclusions
    assert PatternMatcher(["  a  "]).patterns[0].cleaned == "a"


def test_exclusion_flag_and_lone_bang() -> None:
    assert PatternMatcher(["a", "!a/b"]).exclusions
    with pytest.raises(BadPattern):
        PatternMatcher(["!"])


def test_pattern_failing_only_at_compile_time_errors_every_call() -> None:
    pm = PatternMatcher(["[Local-Only]/"])  # filepath.Match accepts it, the regexp does not
    for _ in range(2):
        with pytest.raises(BadPattern):
            pm.matches_or_parent_matches("x")


def test_exceptions_reinclude_and_parent_dirs() -> None:
    pm = PatternMatcher(["docs", "!docs/keep.md", "**/*.log"])
    assert pm.matches_or_parent_matches("docs/a/b.txt")
    assert not pm.matches_or_parent_matches("docs/keep.md")
    assert pm.matches_or_parent_matches("src/deep/x.log")
    assert pm.matches_or_parent_matches("x.log")
    assert not pm.matches_or_parent_matches("src/x.txt")


def test_dir_double_star_does_not_match_dir_itself() -> None:
    pm = PatternMatcher(["dir/**"])
    assert not pm.matches_or_parent_matches("dir")
    assert pm.matches_or_parent_matches("dir/a")


def test_go_clean_and_match() -> None:
    assert go_clean("") == "."
    assert go_clean("//a//b/../c/") == "/a/c"
    assert go_filepath_match("a*/b", "abc/b")
    assert not go_filepath_match("a*", "a/b")
    with pytest.raises(BadPattern):
        go_filepath_match("[x-]", "x")


def test_read_ignore_rules() -> None:
    text = "\ufeff# comment\n /abs \r\n\n  # not a comment\n!  /neg/x/../y\nlast"
    assert read_ignore(text) == ["abs", "# not a comment", "!neg/y", "last"]


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / ".dockerignore").write_text("from-context\n")
    df = tmp_path / "app.Dockerfile"
    df.write_text("FROM scratch\n")
    assert find_ignore_file(ctx, df) == ctx / ".dockerignore"
    (tmp_path / "app.Dockerfile.dockerignore").write_text("beside\n")
    assert find_ignore_file(ctx, df) == tmp_path / "app.Dockerfile.dockerignore"
    assert load_ignore(ctx, df) == (tmp_path / "app.Dockerfile.dockerignore", ["beside"])
    assert find_ignore_file(ctx, "-") == ctx / ".dockerignore"
    assert load_ignore(tmp_path, None) == (None, [])


def test_bad_pattern_reported_at_its_line(tmp_path: Path) -> None:
    from builder.errors import UsageError

    (tmp_path / ".dockerignore").write_text("# c\nok\n\n  [x-]\n")
    with pytest.raises(UsageError) as err:
        load_ignore(tmp_path, None)
    diag = err.value.diagnostics[0]
    assert diag.code == "DI-PATTERN" and "[x-]" in diag.message
    assert diag.span is not None and (diag.span.line, diag.span.column) == (4, 1)
    assert diag.line_text == "  [x-]"
