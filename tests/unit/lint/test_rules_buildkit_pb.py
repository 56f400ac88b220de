"""BuildKit build checks and pybuild's PB rules: each fires where it should, not elsewhere,
with BuildKit's message text."""

from __future__ import annotations

import pytest

from builder.lint import LintConfig, lint_text
from tests.unit.lint.helpers import codes

ALL = LintConfig(enabled=frozenset({"InvalidDefinitionDescription"}))


def messages(text: str, code: str) -> list[tuple[int, str]]:
    return [(f.line, f.message) for f in lint_text(text, "Dockerfile", ALL) if f.code == code]


@pytest.mark.parametrize("code, text, expected", [
    ("StageNameCasing", "FROM alpine:3.20 AS Build\n",
     [(1, "Stage name 'Build' should be lowercase")]),
    ("FromAsCasing", "from alpine:3.20 AS build\n",
     [(1, "'AS' and 'from' keywords' casing do not match")]),
    ("ConsistentInstructionCasing", "FROM alpine:3.20\nRUN true\nworkdir /x\n",
     [(3, "Command 'workdir' should match the case of the command majority (uppercase)")]),
    ("DuplicateStageName", "FROM alpine:3.20 AS a\nFROM alpine:3.20 AS A\n",
     [(2, 'Duplicate stage name "a", stage names should be unique')]),
    ("ReservedStageName", "FROM alpine:3.20 AS context\n",
     [(1, 'Stage name should not use the same name as reserved stage "context"')]),
    ("JSONArgsRecommended", "FROM alpine:3.20\nENTRYPOINT run.sh\n",
     [(2, "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related "
          "to OS signals")]),
    ("MaintainerDeprecated", "FROM alpine:3.20\nMAINTAINER x\n",
     [(2, "Maintainer instruction is deprecated in favor of using label")]),
    ("UndefinedArgInFrom", "ARG TAG=1\nFROM alpine:${TAGG}\n",
     [(2, "FROM argument 'TAGG' is not declared (did you mean TAG?)")]),
    ("WorkdirRelativePath", "FROM alpine:3.20\nWORKDIR app\nWORKDIR /srv\nWORKDIR sub\n",
     [(2, 'Relative workdir "app" can have unexpected results if the base image changes')]),
    ("UndefinedVar", "FROM scratch\nCOPY $src /dst\n",
     [(2, "Usage of undefined variable '$src'")]),
    ("MultipleInstructionsDisallowed", "FROM alpine:3.20\nCMD [\"a\"]\nCMD [\"b\"]\n",
     [(2, "Multiple CMD instructions should not be used in the same stage because only the "
          "last one will be used")]),
    ("LegacyKeyValueFormat", "FROM alpine:3.20\nENV a b\n",
     [(2, '"ENV key=value" should be used instead of legacy "ENV key value" format')]),
    ("RedundantTargetPlatform", "FROM --platform=$TARGETPLATFORM alpine:3.20\n",
     [(1, "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is "
          "the default behavior")]),
    ("SecretsUsedInArgOrEnv", "FROM alpine:3.20\nARG GITHUB_TOKEN\nARG PUBLIC_KEY\n",
     [(2, 'Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN")')]),
    ("InvalidDefaultArgInFrom", "ARG TAG\nFROM alpine:${TAG}\n",
     [(2, "Default value for ARG alpine:${TAG} results in empty or invalid base image name")]),
    ("FromPlatformFlagConstDisallowed",
     "FROM --platform=linux/amd64 alpine:3.20\nFROM --platform=linux/arm64 alpine AS b-arm64\n",
     [(1, 'FROM --platform flag should not use constant value "linux/amd64"')]),
    ("InvalidDefinitionDescription", "# the builder\nFROM alpine:3.20 AS build\n",
     [(2, "Comment for FROM should follow the format: `# build <description>`")]),
    ("ExposeProtoCasing", "FROM alpine:3.20\nEXPOSE 53/UDP 80/tcp\n",
     [(2, "Defined protocol '53/UDP' in EXPOSE instruction should be lowercase")]),
    ("ExposeInvalidFormat", "FROM alpine:3.20\nEXPOSE 127.0.0.1:80:80\n",
     [(2, "EXPOSE instruction should not define an IP address or host-port mapping, found "
          "'127.0.0.1:80:80'")]),
    ("NoEmptyContinuation", "FROM alpine:3.20\nRUN apk add \\\n\n    curl\n",
     [(2, "Empty continuation line")]),
])
def test_buildkit_check(code: str, text: str, expected: list[tuple[int, str]]) -> None:
    assert messages(text, code) == expected


def test_undefined_var_trusts_the_base_image_environment() -> None:
    # golang's image defines GOPATH; we cannot see it, so we do not guess.
    assert messages("FROM golang:1.22\nENV P=$GOPATH/bin\n", "UndefinedVar") == []
    assert messages("FROM golang:1.22\nARG VERSION=1\nENV V=$VERSON\n", "UndefinedVar") == [
        (3, "Usage of undefined variable '$VERSON' (did you mean $VERSION?)")]


def test_pb4001_unnamed_stage_never_built() -> None:
    text = "FROM alpine:3.20\nRUN make\nFROM alpine:3.20 AS tool\nFROM alpine:3.20\n"
    assert [c for c in codes(text) if c[0] == "PB4001"] == [("PB4001", 1)]


def test_pb4002_forward_stage_reference() -> None:
    text = ("FROM alpine:3.20\nCOPY --from=build /a /a\n"
            "RUN --mount=from=build,target=/b true\nFROM golang:1.22 AS build\n")
    assert [c for c in codes(text) if c[0] == "PB4002"] == [("PB4002", 2), ("PB4002", 3)]
    ok = "FROM golang:1.22 AS build\nFROM alpine:3.20\nCOPY --from=build /a /a\n"
    assert not [c for c in codes(ok) if c[0] == "PB4002"]


def test_pb4003_arg_scoping() -> None:
    text = ("ARG VERSION=1\nFROM alpine:3.20\nRUN echo $VERSION\n"
            "ENV A=${LATE}\nARG LATE=2\nRUN echo '$LATE' \"$LATE\"\n")
    got = messages(text, "PB4003")
    assert got == [
        (3, "ARG VERSION is used here but declared before FROM but not re-declared in this "
            "stage; it expands to an empty string"),
        (4, "ARG LATE is used here but declared later in this stage; it expands to an empty "
            "string")]
    fine = "ARG VERSION=1\nFROM alpine:${VERSION}\nARG VERSION\nRUN echo $VERSION\n"
    assert messages(fine, "PB4003") == []


def test_pb4004_cache_busting_order() -> None:
    bad = "FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci\n"
    assert [c for c in codes(bad) if c[0] == "PB4004"] == [("PB4004", 4)]
    good = ("FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci\n"
            "COPY . .\nRUN npm run build\n")
    assert not [c for c in codes(good) if c[0] == "PB4004"]
