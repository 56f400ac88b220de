"""Planner semantics, one behaviour per test (parsed Dockerfiles, and hand-built nodes for the
checks the strict parser normally pre-empts)."""

from __future__ import annotations

import pytest

from builder.errors import DockerfileError, UsageError
from builder.frontend import PlanOptions, plan
from builder.graph import (
    BaseImageInfo,
    BuildPlan,
    ContextSource,
    Copy,
    Exec,
    ImageConfig,
    ImageSource,
    Mkdir,
    Platform,
    step_id,
)
from builder.syntax import nodes as n
from builder.syntax import parse
from tests.unit.frontend.nodes_kit import Kit


def _plan(text: str, **opts: object) -> BuildPlan:
    return plan(parse(text, "Dockerfile"), PlanOptions(**opts))  # type: ignore[arg-type]


def _execs(p: BuildPlan, stage: int = -1) -> list[Exec]:
    st = p.stages[stage]
    return [s for s in (p.steps[i] for i in st.steps) if isinstance(s, Exec)]


def _env(e: Exec) -> dict[str, str]:
    return dict(x.split("=", 1) for x in e.env)


# --------------------------------------------------------------------------- ARG scoping


def test_global_arg_only_in_from_unless_redeclared() -> None:
    p = _plan("ARG V=1\nFROM alpine:$V\nRUN a\nARG V\nRUN b\n")
    assert p.stages[0].base == "alpine:1"
    first, second = _execs(p)
    assert "V" not in _env(first)
    assert _env(second)["V"] == "1"


def test_build_arg_overrides_global_and_stage_defaults() -> None:
    p = _plan("ARG V=1\nFROM alpine:$V\nARG V\nARG W=x\nRUN a\n",
              build_args=(("V", "2"), ("W", "y")))
    assert p.stages[0].base == "alpine:2"
    env = _env(_execs(p)[0])
    assert (env["V"], env["W"]) == ("2", "y")


def test_bare_build_arg_reads_the_given_environment_only() -> None:
    text = "FROM scratch\nARG A\nARG B\nRUN x\n"
    p = _plan(text, build_args=(("A", None), ("B", None)), environ={"A": "from-env"})
    env = _env(_execs(p)[0])
    assert env["A"] == "from-env" and "B" not in env


def test_env_overrides_arg_and_args_are_not_persisted() -> None:
    p = _plan("FROM scratch\nARG X=arg\nENV X=env\nARG Y=only-arg\nRUN a\n")
    assert _env(_execs(p)[0])["X"] == "env"
    env = p.stages[0].config.env_map()
    assert env["X"] == "env" and "Y" not in env


def test_env_pairs_see_the_environment_before_the_instruction() -> None:
    # Dockerfile reference: `ENV abc=hello` then `ENV abc=bye def=$abc` gives def=hello.
    p = _plan("FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\n")
    env = p.stages[0].config.env_map()
    assert (env["abc"], env["def"]) == ("bye", "hello")


def test_arg_pairs_apply_one_after_another() -> None:
    p = _plan("FROM scratch\nARG a=1 b=${a}2\nRUN x\n")
    env = _env(_execs(p)[0])
    assert (env["a"], env["b"]) == ("1", "12")


def test_arg_default_expands_with_earlier_values() -> None:
    p = _plan("FROM scratch\nENV BASE=/opt\nARG DIR=$BASE/app\nWORKDIR $DIR\n")
    assert p.stages[0].config.working_dir == "/opt/app"


def test_platform_args_are_global_and_normalised() -> None:
    p = _plan("FROM --platform=$BUILDPLATFORM alpine AS b\nARG TARGETARCH\nARG BUILDOS\n"
              "RUN x\n",
              build_platform=Platform("linux", "amd64"),
              target_platform=Platform.parse("linux/aarch64/v8"))
    assert p.stages[0].platform == Platform("linux", "amd64")
    env = _env(_execs(p)[0])
    assert env["TARGETARCH"] == "arm64" and env["BUILDOS"] == "linux"


def test_proxy_args_reach_run_but_not_id_or_history() -> None:
    text = "FROM scratch\nRUN wget x\n"
    plain = _plan(text)
    proxied = _plan(text, build_args=(("https_proxy", "http://p:1"),))
    e = _execs(proxied)[0]
    assert "HTTPS_PROXY=http://p:1" in e.proxy_env and "https_proxy=http://p:1" in e.proxy_env
    assert "HTTPS_PROXY" not in _env(e)
    assert plain.stages[0].root == proxied.stages[0].root  # not part of the StepId
    assert "proxy" not in proxied.stages[0].history[-1].created_by
    assert not proxied.warnings


def test_unused_build_arg_is_a_warning() -> None:
    p = _plan("FROM scratch\n", build_args=(("NOPE", "1"),))
    assert [w.code for w in p.warnings] == ["DF-UNUSED-ARG"]


def test_run_history_lists_build_args_like_buildkit() -> None:
    p = _plan("FROM scratch\nARG A=1\nARG B\nRUN make\n")
    assert p.stages[0].history[-1].created_by == "RUN |2 A=1 B= /bin/sh -c make # buildkit"


# --------------------------------------------------------------------------- config


def test_entrypoint_resets_inherited_cmd_but_not_own_cmd() -> None:
    base = BaseImageInfo(ref="py", config=ImageConfig(cmd=("python3",)))
    resolver = lambda ref, _p: base if ref == "py" else None  # noqa: E731
    p = _plan("FROM py\nENTRYPOINT [\"/e\"]\n", resolver=resolver)
    assert p.stages[0].config.cmd is None
    p = _plan("FROM py\nCMD [\"x\"]\nENTRYPOINT [\"/e\"]\n", resolver=resolver)
    assert p.stages[0].config.cmd == ("x",)


def test_shell_form_uses_active_shell() -> None:
    p = _plan('FROM scratch\nSHELL ["/bin/bash", "-c"]\nCMD echo $HOME\nRUN ls -l\n')
    cfg = p.stages[0].config
    assert cfg.cmd == ("/bin/bash", "-c", "echo $HOME")
    assert _execs(p)[0].argv == ("/bin/bash", "-c", "ls -l")


def test_workdir_chains_relative_paths_from_base_config() -> None:
    base = BaseImageInfo(ref="n", config=ImageConfig(working_dir="/srv", user="app"))
    p = _plan("FROM n\nWORKDIR a\nWORKDIR ../b\nRUN pwd\n", resolver=lambda r, _p: base)
    assert p.stages[0].config.working_dir == "/srv/b"
    mk = [p.steps[s] for s in p.stages[0].steps if isinstance(p.steps[s], Mkdir)]
    assert [m.path for m in mk] == ["/srv/a", "/srv/b"]  # type: ignore[attr-defined]
    assert all(m.user == "app" for m in mk)  # type: ignore[attr-defined]
    assert _execs(p)[0].cwd == "/srv/b"


def test_base_image_env_feeds_expansion() -> None:
    base = BaseImageInfo(ref="b", config=ImageConfig(env=("PATH=/custom/bin",)))
    p = _plan("FROM b\nENV PATH=$PATH:/extra\n", resolver=lambda r, _p: base)
    assert p.stages[0].config.env_map()["PATH"] == "/custom/bin:/extra"


def test_default_path_added_when_missing() -> None:
    p = _plan("FROM scratch\n")
    assert p.stages[0].config.env_map()["PATH"].startswith("/usr/local/sbin")


def test_onbuild_recorded_verbatim_without_history() -> None:
    p = _plan("FROM scratch\nONBUILD RUN echo $HOME\n")
    assert p.stages[0].config.on_build == ("RUN echo $HOME",)
    assert p.stages[0].history == ()


def test_base_onbuild_triggers_run_after_from_and_are_cleared() -> None:
    base = BaseImageInfo(ref="b", config=ImageConfig(on_build=("WORKDIR /w", "RUN make")))
    p = _plan("FROM b\nRUN after\n", resolver=lambda r, _p: base)
    st = p.stages[0]
    assert [h.created_by for h in st.history] == [
        "WORKDIR /w", "RUN /bin/sh -c make # buildkit", "RUN /bin/sh -c after # buildkit"]
    assert st.config.on_build == ()
    assert all(p.spans[s].line == 1 for s in st.steps[:2])  # trigger steps point at FROM


def test_healthcheck_and_history_formats() -> None:
    p = _plan("FROM scratch\nHEALTHCHECK --interval=1m30s --retries=2 CMD true\n"
              "EXPOSE 80 53/udp\nVOLUME /a /b\n")
    cfg = p.stages[0].config
    assert cfg.healthcheck is not None and cfg.healthcheck.interval == 90 * 10**9
    assert [h.created_by for h in p.stages[0].history] == [
        "HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"1m30s\" \"0s\" \"0s\" \"0s\" '\\x02'}",
        "EXPOSE map[53/udp:{} 80/tcp:{}]",
        "VOLUME [/a /b]",
    ]


def test_healthcheck_zero_values_mean_default() -> None:
    # BuildKit's parseHealthcheck: a zero duration and --retries=0 are accepted and stored as
    # 0 (the runtime's default); only negative retries and 0 < d < 1ms are errors.
    p = _plan("FROM scratch\nHEALTHCHECK --interval=0s --timeout=0 --retries=0 CMD true\n")
    hc = p.stages[0].config.healthcheck
    assert hc is not None
    assert (hc.test, hc.interval, hc.timeout, hc.retries) == (("CMD-SHELL", "true"), 0, 0, 0)


@pytest.mark.parametrize("retries", ["1_0", "4294967296"])
def test_healthcheck_retries_is_a_go_int32(retries: str) -> None:
    # strconv.ParseInt(v, 10, 32): Python's int() would take "1_0" as 10 and any size.
    with pytest.raises(DockerfileError, match="HEALTHCHECK --retries: invalid number"):
        _plan(f"FROM scratch\nHEALTHCHECK --retries={retries} CMD true\n")


# --------------------------------------------------------------------------- stages and DAG


def test_stage_names_case_insensitive_and_index_refs() -> None:
    p = _plan("FROM alpine AS Build\nRUN a\nFROM scratch\nCOPY --from=BUILD /a /a\n"
              "COPY --from=0 /b /b\n")
    final = p.stages[1]
    copies = [p.steps[s] for s in final.steps]
    assert all(isinstance(c, Copy) and c.source == p.stages[0].root for c in copies)
    assert final.deps == (0,)


def test_copy_from_image_and_run_mount_from_stage() -> None:
    p = _plan("FROM alpine AS a\nRUN x\nFROM scratch\nCOPY --from=nginx:1 /etc /etc\n"
              "RUN --mount=from=a,target=/m,source=/out ls\n")
    copy = p.steps[p.stages[1].steps[0]]
    assert isinstance(copy, Copy)
    assert p.steps[copy.source] == ImageSource(ref="nginx:1", platform=Platform("linux", "amd64"))
    run = _execs(p)[0]
    assert run.mounts[0].source == p.stages[0].root and run.mounts[0].readonly
    assert p.stages[1].deps == (0,)


def test_mount_target_defaults_to_workdir_and_cache_id_to_target() -> None:
    p = _plan("FROM alpine AS bin\nFROM alpine\nWORKDIR /work\n"
              "RUN --mount=from=bin --mount=type=cache,target=c ls\n")
    bind, cache = _execs(p)[0].mounts
    assert bind.target == "/work" and bind.source == p.stages[0].root
    assert (cache.target, cache.id) == ("/work/c", "/work/c")


def test_independent_stages_share_nothing_until_joined() -> None:
    p = _plan("FROM alpine AS a\nRUN a\nFROM busybox AS b\nRUN b\nFROM scratch\n"
              "COPY --from=a /a /a\nCOPY --from=b /b /b\n")
    chain_a = set(p.topological(p.stages[0].root))
    chain_b = set(p.topological(p.stages[1].root))
    assert not chain_a & chain_b
    assert set(p.topological()) >= chain_a | chain_b


def test_from_earlier_stage_inherits_config_and_root() -> None:
    p = _plan("FROM alpine AS base\nENV A=1\nRUN x\nFROM base\nRUN y\n")
    child = p.stages[1]
    assert child.base_stage == 0 and child.base_root == p.stages[0].root
    assert child.config.env_map()["A"] == "1"
    assert p.steps[child.steps[0]].root == p.stages[0].root  # type: ignore[attr-defined]


def test_target_selection_and_pruning() -> None:
    text = "FROM alpine AS a\nFROM alpine AS b\nFROM a AS c\n"
    assert _plan(text).pruned == (1,)
    assert _plan(text, target="B").pruned == (0, 2)
    with pytest.raises(UsageError):
        _plan(text, target="zzz")


def test_pruned_stage_errors_are_warnings() -> None:
    p = _plan("FROM alpine AS broken\nLABEL x=${X:?}\nFROM scratch\n")
    assert p.pruned == (0,)
    assert p.warnings[0].code == "DF-PRUNED-STAGE"
    with pytest.raises(DockerfileError):
        _plan("FROM alpine AS broken\nLABEL x=${X:?}\nFROM scratch\n", target="broken")


def test_resolver_not_called_for_pruned_stages() -> None:
    calls: list[str] = []

    def resolver(ref: str, _p: object) -> None:
        calls.append(ref)

    _plan("FROM unused:1 AS x\nFROM used:1\n", resolver=resolver)
    assert calls == ["used:1"]


def test_copy_context_selection_and_dockerignore() -> None:
    p = _plan("FROM scratch\nCOPY a/b.txt ./c/ /dst/\nCOPY . /all\n",
              dockerignore=("*.log",))
    first, second = (p.steps[p.steps[s].source] for s in p.stages[0].steps)  # type: ignore
    assert isinstance(first, ContextSource) and first.includes == ("a/b.txt", "c")
    assert first.excludes == ("*.log",)
    assert second.includes == ()  # type: ignore[attr-defined]


def test_step_ids_ignore_spans_and_comments() -> None:
    a = _plan("FROM alpine\nRUN make\n")
    b = _plan("# a comment\n\nFROM alpine\n\n\nRUN   make\n")
    assert a.stages[0].root == b.stages[0].root
    c = _plan("FROM alpine\nRUN make all\n")
    assert c.stages[0].root != a.stages[0].root


def test_step_id_covers_inputs() -> None:
    base1 = ImageSource(ref="a")
    base2 = ImageSource(ref="b")
    e1 = Exec(root=step_id(base1), argv=("x",))
    e2 = Exec(root=step_id(base2), argv=("x",))
    assert step_id(e1) != step_id(e2)


# --------------------------------------------------------------------------- defensive checks


def test_unknown_flag_without_strict_parser() -> None:
    k = Kit()
    k.frm("alpine")
    k.add(n.Workdir, "WORKDIR --x=1 /a", {"x": "1"}, path="/a")
    with pytest.raises(DockerfileError) as err:
        plan(k.dockerfile())
    diag = err.value.diagnostics[0]
    assert diag.code == "DF-FLAG" and "unknown flag: --x" in diag.message
    assert (diag.span.line, diag.span.column) == (2, 9)  # type: ignore[union-attr]
    assert diag.line_text == "WORKDIR --x=1 /a"


def test_shell_not_json_without_strict_parser() -> None:
    k = Kit()
    k.frm("alpine")
    k.add(n.Shell, "SHELL /bin/sh -c", argv=("/bin/sh -c",), json=False)
    with pytest.raises(DockerfileError, match="JSON form"):
        plan(k.dockerfile())


def test_duplicate_flag_rejected() -> None:
    k = Kit()
    k.frm("alpine")
    k.add(n.Copy, "COPY --chown=a --chown=b x y", {"chown": "a", "chown#2": "b"},
          sources=("x",), dest="y")
    with pytest.raises(DockerfileError, match="duplicate flag"):
        plan(k.dockerfile())


def test_expansion_error_carries_the_instruction_span() -> None:
    k = Kit()
    k.frm("alpine")
    k.env(A="${B:?needed}")
    with pytest.raises(DockerfileError) as err:
        plan(k.dockerfile())
    diag = err.value.diagnostics[0]
    assert diag.code == "DF-EXPAND" and "B: needed" in diag.message
    assert diag.span is not None and diag.span.line == 2


@pytest.mark.parametrize("url,name", [
    ("https://example.com/a/tool.tar.gz?x=1#frag", "tool.tar.gz"),
    ("https://example.com/", "__unnamed__"),
    ("https://example.com", "__unnamed__"),
    ("http://example.com/dir/", "dir"),
    ("https://example.com/a/my%20tool-1.0.txt", "my tool-1.0.txt"),
    ("https://example.com/a%2Fb", "b"),
])
def test_add_url_file_names(url: str, name: str) -> None:
    from builder.graph import HttpSource

    p = _plan(f"FROM scratch\nADD {url} /dl/\n")
    copy = p.steps[p.stages[0].root]
    assert isinstance(copy, Copy) and copy.sources == (name,)
    source = p.steps[copy.source]  # type: ignore[index]
    assert isinstance(source, HttpSource) and source.filename == name and source.url == url


def test_add_git_source_and_local_lookalike() -> None:
    from builder.graph import GitSource

    p = _plan("FROM scratch\nADD --keep-git-dir https://github.com/a/b.git#v1:sub /src\n"
              "ADD github.com/a/b /local\n")
    git_copy, local_copy = (p.steps[s] for s in p.stages[0].steps)
    git = p.steps[git_copy.source]  # type: ignore[attr-defined]
    assert isinstance(git, GitSource)
    assert (git.url, git.ref, git.subdir, git.keep_git_dir) == (
        "https://github.com/a/b.git", "v1", "sub", True)
    assert isinstance(p.steps[local_copy.source], ContextSource)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- build checks


def test_undefined_var_warning_with_suggestion() -> None:
    p = _plan("FROM scratch\nENV APP_HOME=/app\nWORKDIR /x$APP_HOM\nARG DECLARED\n"
              "LABEL a=$DECLARED b=$NOPE\n")
    found = [(w.code, w.message, w.hint, w.span.line) for w in p.warnings if w.span]
    assert ("UndefinedVar", "Usage of undefined variable '$APP_HOM'", "did you mean $APP_HOME?",
            3) in found
    assert [m for _, m, _, _ in found if "DECLARED" in m] == []  # declared ARG, even unset
    assert any("$NOPE" in m for _, m, _, _ in found)


def test_undefined_arg_in_from() -> None:
    p = _plan("ARG VERSION=1\nFROM alpine:$VERSON\nFROM alpine:$VERSION\n")
    w = [x for x in p.warnings if x.code == "UndefinedArgInFrom"]
    assert len(w) == 1 and w[0].message == "FROM argument 'VERSON' is not declared"
    assert w[0].hint == "did you mean VERSION?" and w[0].span.line == 2  # type: ignore[union-attr]


def test_checks_skip_pruned_stages() -> None:
    p = _plan("FROM alpine AS unused\nLABEL a=$NOPE\nFROM scratch\n")
    assert p.pruned == (0,) and not [w for w in p.warnings if w.code == "UndefinedVar"]


def test_reserved_stage_name_warns() -> None:
    p = _plan("FROM alpine AS scratch\nFROM alpine\n")
    assert [w.code for w in p.warnings] == ["ReservedStageName"]


def test_copy_from_uses_global_args() -> None:
    p = _plan("ARG SRC=builder\nFROM alpine AS builder\nRUN x\nFROM scratch\n"
              "COPY --from=$SRC /a /a\n")
    assert p.pruned == () and p.stages[1].deps == (0,)
    copy = p.steps[p.stages[1].root]
    assert isinstance(copy, Copy) and copy.source == p.stages[0].root


def test_onbuild_trigger_from_reference_keeps_its_stage() -> None:
    p = _plan("FROM alpine AS assets\nRUN make\nFROM alpine AS tmpl\n"
              "ONBUILD COPY --from=assets /a /a\nFROM tmpl\n")
    assert p.pruned == ()
    final = p.stages[2]
    copy = p.steps[final.root]
    assert isinstance(copy, Copy) and copy.source == p.stages[0].root
    assert final.deps == (0, 1)


def test_workdir_relative_path_check() -> None:
    p = _plan("FROM alpine AS a\nWORKDIR app\nWORKDIR sub\nFROM alpine AS b\nWORKDIR /abs\n"
              "WORKDIR rel\nFROM a\nWORKDIR more\nCOPY --from=b / /b\n")
    hits = [(w.span.line, w.message) for w in p.warnings if w.code == "WorkdirRelativePath"]
    assert hits == [(2, 'Relative workdir "app" can have unexpected results if the base '
                        'image changes')]


def test_redundant_target_platform_check() -> None:
    p = _plan("FROM --platform=$TARGETPLATFORM alpine\n")
    assert [w.code for w in p.warnings] == ["RedundantTargetPlatform"]
    assert not _plan("FROM --platform=$BUILDPLATFORM alpine\n").warnings


def test_legacy_key_value_format_check() -> None:
    p = _plan("FROM scratch\nENV A b c\nENV B=1\n")
    assert [(w.code, w.span.line) for w in p.warnings] == [  # type: ignore[union-attr]
        ("LegacyKeyValueFormat", 2)]
    assert p.stages[0].config.env_map()["A"] == "b c"


def test_a_base_image_the_resolver_cannot_find_is_reported_at_its_from_line() -> None:
    from builder.errors import ImageError

    def resolver(ref: str, _platform: object) -> None:
        raise ImageError(f"base image {ref} is not in the store", hint="load it first")

    with pytest.raises(ImageError) as info:
        _plan("FROM scratch AS a\n\nFROM nosuch:1 AS b\nRUN true\n", resolver=resolver)
    (diag,) = info.value.diagnostics
    assert (diag.span.line, diag.span.column) == (3, 1)
    assert diag.line_text == "FROM nosuch:1 AS b"
    assert diag.message == "base image nosuch:1 is not in the store"
    assert diag.hint == "load it first"
    assert info.value.exit_code == 1  # still an image problem, not an invalid Dockerfile
