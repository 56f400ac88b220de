"""Properties of the lexer and the matcher over generated inputs (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.frontend.expand import ExpansionError, ShellLexer, expand, expand_words
from builder.patternmatcher import PatternMatcher

plain = st.text(alphabet=st.characters(blacklist_characters="$'\"\\`",
                                       blacklist_categories=("Cs",)), max_size=40)
segment = st.text(alphabet="abcxyz019_-.", min_size=1, max_size=6).filter(
    lambda s: s not in (".", ".."))
rel_path = st.lists(segment, min_size=1, max_size=5).map("/".join)


@given(plain)
def test_words_without_specials_expand_to_themselves(word: str) -> None:
    assert expand(word, {}) == word


@given(plain)
def test_fast_path_agrees_with_the_full_lexer(word: str) -> None:
    # The full lexer runs when the word contains the (here unused) escape character.
    fast = ShellLexer("\\").process(word, {})
    slow = ShellLexer("\\").process(word + "\\", {})  # a trailing escape is dropped
    assert (fast.result, fast.words) == (slow.result, slow.words)


@given(st.text(max_size=30), st.dictionaries(st.sampled_from("ABC"), st.text(max_size=5)))
@settings(max_examples=300)
def test_lexer_never_crashes(word: str, env: dict[str, str]) -> None:
    try:
        r = ShellLexer().process(word, env)
    except ExpansionError:
        return
    assert isinstance(r.result, str) and all(w for w in r.words)


@given(st.text(max_size=30), st.dictionaries(st.sampled_from("AB"), st.text(max_size=5)))
def test_result_without_words_is_the_same(word: str, env: dict[str, str]) -> None:
    try:
        full = ShellLexer().process(word, env)
    except ExpansionError:
        return
    lean = ShellLexer().process(word, env, words=False)
    assert (lean.result, lean.matched, lean.unmatched) == (full.result, full.matched,
                                                           full.unmatched)


@given(st.lists(st.text(alphabet="ab ", max_size=5), max_size=4))
def test_quoted_value_is_one_word(values: list[str]) -> None:
    env = {f"V{i}": v for i, v in enumerate(values)}
    text = "".join(f'"${{V{i}}}"' for i in range(len(values)))
    joined = "".join(values)
    assert expand_words(text, env) == ([joined] if joined else [])


@given(rel_path, rel_path)
def test_literal_pattern_matches_itself_and_children_only(pattern: str, path: str) -> None:
    pm = PatternMatcher([pattern])
    expected = path == pattern or path.startswith(pattern + "/")
    assert pm.matches_or_parent_matches(path) == expected


@given(rel_path)
def test_exception_after_pattern_reincludes(path: str) -> None:
    pm = PatternMatcher(["**", "!" + path])
    assert not pm.matches_or_parent_matches(path)
    assert pm.matches_or_parent_matches(path + "x")


LINES = [
    "FROM alpine AS a", "FROM a AS b", "FROM scratch", "FROM --platform=$BUILDPLATFORM busybox",
    "FROM ${BASE:-alpine}", "ARG BASE", "ARG V=1", "ARG V", "ENV V=${V:-x} W=$V",
    "ENV PATH=$PATH:/x", "RUN echo $V", "RUN [\"/bin/true\"]", "RUN --mount=from=a,target=/m ls",
    "RUN --mount=type=cache,target=c true", "RUN --network=none true", "COPY . .",
    "COPY --from=a /x /y", "COPY --from=0 /x /y", "COPY --from=b /x y/", "ADD a.tar.gz /",
    "ADD https://example.com/f /f", "WORKDIR $V", "WORKDIR rel", "WORKDIR /abs", "USER $V",
    "LABEL a=$V b=\"c d\"", "EXPOSE 80 ${P:-81}/udp", "VOLUME /v $V", "STOPSIGNAL SIGTERM",
    "CMD echo", "CMD [\"a\"]", "ENTRYPOINT [\"e\"]", "ENTRYPOINT sh",
    "SHELL [\"/bin/bash\", \"-c\"]",
    "HEALTHCHECK --interval=5s CMD true", "HEALTHCHECK NONE", "ONBUILD RUN x",
    "MAINTAINER me", "LABEL x=${UNSET:?boom}", "COPY --from=zz /a /b",
]


@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=12),
       st.sampled_from([None, "a", "b", "0", "nope"]),
       st.lists(st.sampled_from([("V", "2"), ("BASE", "debian"), ("X", None)]), max_size=3))
@settings(max_examples=300, deadline=None)
def test_planner_raises_only_pybuild_errors(lines: list[str], target: str | None,
                                            build_args: list[tuple[str, str | None]]) -> None:
    from builder.errors import PybuildError
    from builder.frontend import PlanOptions, plan
    from builder.syntax import parse

    text = "\n".join(lines) + "\n"
    try:
        df = parse(text, "Dockerfile")
        p = plan(df, PlanOptions(target=target, build_args=tuple(build_args)))
    except PybuildError as err:
        assert err.message
        return
    assert all(i in p.steps for s in p.steps.values() for i in s.inputs)
    assert 0 <= p.target < len(p.stages) and p.target not in p.pruned
