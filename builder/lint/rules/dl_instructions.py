"""hadolint DL rules about instructions themselves (FROM, COPY, ADD, WORKDIR, USER, EXPOSE,
CMD/ENTRYPOINT, ENV/ARG, ONBUILD, SHELL, stage structure). Semantics follow hadolint 2.15.1;
messages are hadolint's so its users' tooling keeps matching them."""

from __future__ import annotations

import re
from collections.abc import Iterator

from builder.errors import Severity
from builder.lint.context import Context
from builder.lint.finding import Finding
from builder.lint.rule import rule
from builder.lint.rules.common import declared_names, image_ref, mounts, unquote
from builder.syntax import nodes as n

E, W, N, S = Severity.ERROR, Severity.WARNING, Severity.INFO, Severity.STYLE


@rule("DL1001", N, "Please refrain from using inline ignore pragmas  `# hadolint ignore=DLxxxx`.",
      default_enabled=False,
      why="Inline ignores hide problems from reviewers; some teams want every exception in the "
          "shared config file instead.",
      fix="Move the exception to `.hadolint.yaml` (`ignored:`) or fix the finding.",
      bad="# hadolint ignore=DL3003\nRUN cd /tmp && make", good="WORKDIR /tmp\nRUN make")
def dl1001(ctx: Context) -> Iterator[Finding]:
    from builder.lint.pragmas import ignore_codes

    starts = sorted(i.span.line for i in ctx.df.instructions)
    for c in ctx.df.comments:
        got = ignore_codes(c.text)
        if got and got[0] == "hadolint":
            line = next((s for s in starts if s > c.span.line), c.span.line)
            yield ctx.finding("DL1001", _at_line(ctx, line) or ctx.df.instructions[0])


def _at_line(ctx: Context, line: int) -> n.Instruction | None:
    return next((i for i in ctx.df.instructions if i.span.line == line), None)


def _absolute(path: str) -> bool:
    p = unquote(path)
    return (p.startswith("/") or p.startswith("$")
            or bool(re.match(r"^[A-Za-z]:[\\/]", p)))


@rule("DL3000", E, "Use absolute WORKDIR",
      why="A relative WORKDIR depends on every WORKDIR before it (and on the base image's), "
          "which makes the final directory hard to know when reading the file.",
      fix="Write the full path.", bad="WORKDIR app", good="WORKDIR /usr/src/app")
def dl3000(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.Workdir, onbuild=False):
        if not _absolute(ins.path):
            yield ctx.finding("DL3000", it)


def _is_root(user: str) -> bool:
    return user in ("root", "0") or user.startswith(("root:", "0:"))


@rule("DL3002", W, "Last USER should not be root",
      why="Containers that run as root make every escape worse. Switching to root to install "
          "things is fine; the stage should end as an unprivileged user.",
      fix="Add `USER <non-root>` after the steps that need root.",
      bad="FROM debian:12\nUSER root\nRUN apt-get update", good="FROM debian:12\nUSER root\n"
      "RUN apt-get update\nUSER app")
def dl3002(ctx: Context) -> Iterator[Finding]:
    # hadolint: per stage, the last USER if it is root (stages before the first FROM: none).
    last: dict[int, n.User] = {}
    for ins, it in ctx.each(n.User, onbuild=False):
        if it.stage < 0:
            continue
        if _is_root(ins.user.strip()):
            last[it.stage] = ins
        else:
            last.pop(it.stage, None)
    for ins in last.values():
        yield ctx.finding("DL3002", ins)


@rule("DL3006", W, "Always tag the version of an image explicitly",
      why="An untagged image means `latest`, which changes under you: builds stop being "
          "reproducible.", fix="Pin a tag (or better, a digest).",
      bad="FROM debian", good="FROM debian:12.5")
def dl3006(ctx: Context) -> Iterator[Finding]:
    aliases: set[str] = set()
    for ins, it in ctx.each(n.From, onbuild=False):
        ref = image_ref(ins.image)
        if not (ref.name == "scratch" or ref.digest or ref.tag is not None
                or ins.image in aliases or ins.image.startswith("$")):
            yield ctx.finding("DL3006", it)
        if ins.stage_name:
            aliases.add(ins.stage_name)


@rule("DL3007", W, "Using latest is prone to errors if the image will ever update. Pin the "
      "version explicitly to a release tag",
      why="`latest` moves; a rebuild can silently pick up a different base image.",
      fix="Use a release tag or a digest.", bad="FROM debian:latest", good="FROM debian:12.5")
def dl3007(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.From, onbuild=False):
        ref = image_ref(ins.image)
        if ref.tag == "latest" and not ref.digest:
            yield ctx.finding("DL3007", it)


def _port_numbers(port: str) -> list[str]:
    p = unquote(port).split("/", 1)[0]
    return p.split("-", 1)


@rule("DL3011", E, "Valid UNIX ports range from 0 to 65535",
      why="A port outside 0–65535 cannot exist; the image config would be rejected or ignored.",
      fix="Use a port between 0 and 65535.", bad="EXPOSE 80000", good="EXPOSE 8000")
def dl3011(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.Expose, onbuild=False):
        for port in ins.ports:
            nums = _port_numbers(port)
            if any(x.isdigit() and int(x) > 65535 for x in nums):
                yield ctx.finding("DL3011", it)
                break


@rule("DL3012", E, "Multiple `HEALTHCHECK` instructions",
      why="Only the last HEALTHCHECK of a stage takes effect; the others are dead code.",
      fix="Keep one HEALTHCHECK per stage.",
      bad="HEALTHCHECK CMD a\nHEALTHCHECK CMD b", good="HEALTHCHECK CMD b")
def dl3012(ctx: Context) -> Iterator[Finding]:
    seen: set[int] = set()
    for _ins, it in ctx.each(n.Healthcheck, onbuild=False):
        if it.stage in seen:
            yield ctx.finding("DL3012", it)
        seen.add(it.stage)


# Archives ADD extracts (tar, optionally compressed) — zip is not among them.
_ARCHIVES = (".tar", ".Z", ".bz2", ".gz", ".lz", ".lzma", ".tZ", ".tb2", ".tbz", ".tbz2",
             ".tgz", ".tlz", ".tpz", ".txz", ".xz")


def is_archive(path: str) -> bool:
    return unquote(path).endswith(_ARCHIVES)


def is_url(path: str) -> bool:
    return unquote(path).startswith(("http://", "https://", "git@", "git://"))


@rule("DL3020", E, "Use COPY instead of ADD for files and folders",
      why="ADD also fetches URLs and unpacks archives; for plain files COPY says exactly what "
          "happens.", fix="Use COPY.", bad="ADD app.py /app/", good="COPY app.py /app/")
def dl3020(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.Add, onbuild=False):
        if ins.heredocs:
            continue
        if any(not is_url(s) and not is_archive(s) for s in ins.sources):
            yield ctx.finding("DL3020", it)


@rule("DL3021", E, "COPY with more than 2 arguments requires the last argument to end with /",
      why="With several sources the destination must be a directory; Docker requires the "
          "trailing slash.", fix="End the destination with `/`.",
      bad="COPY a b /app", good="COPY a b /app/")
def dl3021(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.Copy, onbuild=False):
        if len(ins.sources) > 1 and not unquote(ins.dest).endswith("/"):
            yield ctx.finding("DL3021", it)


@rule("DL3022", W, "`COPY --from` should reference a previously defined `FROM` alias",
      why="`--from` naming something that is not an earlier stage is read as an image name and "
          "pulled — usually a typo or a stage defined later.",
      fix="Name a stage defined above (or use a full image reference on purpose).",
      bad="FROM debian:12\nCOPY --from=build /x /x", good="FROM golang:1.22 AS build\n"
      "FROM debian:12\nCOPY --from=build /x /x")
def dl3022(ctx: Context) -> Iterator[Finding]:
    aliases: set[str] = set()
    stages = 0
    for it in ctx.items:
        if it.outer is not None:
            continue  # hadolint checks ONBUILD triggers only for RUN rules (and DL3064)
        ins = it.instr
        if isinstance(ins, n.From) and it.outer is None:
            stages += 1
            if ins.stage_name:
                aliases.add(ins.stage_name)
        elif isinstance(ins, n.Copy):
            src = ins.flag("from")
            if src is None or src.value is None:
                continue
            v = src.value
            # A stage index must name an earlier stage (not the current one); an image
            # reference (with a tag, digest or registry path) is a deliberate image.
            if v in aliases or (v.isdigit() and int(v) < stages - 1) or ":" in v or "/" in v \
                    or "@" in v or v.startswith("$"):
                continue
            yield ctx.finding("DL3022", it)


@rule("DL3023", E, "`COPY --from` cannot reference its own `FROM` alias",
      why="A stage cannot copy from itself; the build fails.",
      fix="Copy from another stage.", bad="FROM debian:12 AS a\nCOPY --from=a /x /y",
      good="FROM debian:12 AS a\nFROM debian:12\nCOPY --from=a /x /y")
def dl3023(ctx: Context) -> Iterator[Finding]:
    current: str | None = None
    for it in ctx.items:
        if it.outer is not None:
            continue  # hadolint checks ONBUILD triggers only for RUN rules (and DL3064)
        ins = it.instr
        if isinstance(ins, n.From) and it.outer is None:
            current = ins.stage_name
        elif isinstance(ins, n.Copy) and current:
            src = ins.flag("from")
            if src is not None and src.value == current:
                yield ctx.finding("DL3023", it)


@rule("DL3024", E, "FROM aliases (stage names) must be unique",
      why="Two stages with one name make `--from` and `--target` ambiguous.",
      fix="Rename one of the stages.", bad="FROM a AS x\nFROM b AS x",
      good="FROM a AS x\nFROM b AS y")
def dl3024(ctx: Context) -> Iterator[Finding]:
    seen: set[str] = set()
    for ins, it in ctx.each(n.From, onbuild=False):
        if ins.stage_name:
            if ins.stage_name in seen:
                yield ctx.finding("DL3024", it)
            seen.add(ins.stage_name)


@rule("DL3025", W, "Use arguments JSON notation for CMD and ENTRYPOINT arguments",
      why="The shell form runs under `/bin/sh -c`, so the program is not PID 1 and never "
          "receives SIGTERM; containers stop only after the kill timeout.",
      fix="Use the exec (JSON array) form.", bad="CMD python app.py",
      good='CMD ["python", "app.py"]')
def dl3025(ctx: Context) -> Iterator[Finding]:
    for it in ctx.items:
        if it.outer is not None:
            continue  # hadolint checks ONBUILD triggers only for RUN rules (and DL3064)
        ins = it.instr
        if isinstance(ins, n.Cmd | n.Entrypoint) and not ins.command.exec_form:
            yield ctx.finding("DL3025", it)
        elif isinstance(ins, n.Healthcheck) and ins.command and not ins.command.exec_form:
            yield ctx.finding("DL3025", it)


def _registry_allowed(registry: str, allowed: tuple[str, ...]) -> bool:
    for pat in allowed:
        if pat == "*" or pat == registry:
            return True
        if pat.startswith("*.") and registry.endswith(pat[1:]):
            return True
    return False


@rule("DL3026", E, "Use only an allowed registry in the FROM image",
      why="Base images from unvetted registries are a supply-chain risk; `trustedRegistries` "
          "lists the ones your organisation accepts.",
      fix="Pull the base image from a trusted registry (or add the registry to "
          "`trustedRegistries`).", bad="FROM evil.example/debian:12",
      good="FROM registry.example.com/debian:12")
def dl3026(ctx: Context) -> Iterator[Finding]:
    allowed = ctx.config.trusted_registries
    if not allowed:
        return
    aliases: set[str] = set()

    def ok(image: str) -> bool:
        ref = image_ref(image)
        return image in aliases or image.isdigit() or image.startswith("$") or (
            _registry_allowed(ref.registry, allowed) if ref.registry
            else ref.name == "scratch" or _registry_allowed("docker.io", allowed)
            or "hub.docker.com" in allowed)

    for it in ctx.items:
        if it.outer is not None:
            continue  # hadolint checks ONBUILD triggers only for RUN rules (and DL3064)
        ins = it.instr
        images: list[str] = []
        if isinstance(ins, n.From):
            images = [ins.image]
        elif isinstance(ins, n.Copy):
            f = ins.flag("from")
            images = [f.value] if f is not None and f.value else []
        elif isinstance(ins, n.Run):
            images = [m["from"] for m in mounts(ins) if m.get("from")]
        bad = any(not ok(i) for i in images)
        if isinstance(ins, n.From) and ins.stage_name:
            aliases.add(ins.stage_name)
        if bad:
            yield ctx.finding("DL3026", it)


@rule("DL3029", W, "Do not use --platform flag with FROM",
      why="A fixed platform makes the Dockerfile build one architecture only.",
      fix="Drop `--platform` (or use `$BUILDPLATFORM`/`$TARGETPLATFORM` on purpose).",
      bad="FROM --platform=linux/amd64 debian:12", good="FROM debian:12")
def dl3029(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.From, onbuild=False):
        f = ins.flag("platform")
        if f is not None and not (f.value or "").startswith("$"):
            yield ctx.finding("DL3029", it)


@rule("DL3043", E, "`ONBUILD`, `FROM` or `MAINTAINER` triggered from within `ONBUILD` "
      "instruction.",
      why="Docker rejects these as ONBUILD triggers.", fix="Remove the trigger.",
      bad="ONBUILD FROM debian", good="ONBUILD RUN make")
def dl3043(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.Onbuild, onbuild=False):
        if isinstance(ins.inner, n.Onbuild | n.From | n.Maintainer):
            yield ctx.finding("DL3043", it)


_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")


@rule("DL3044", E, "Do not refer to an environment variable within the same `ENV` statement "
      "where it is defined.",
      why="Variables set by an ENV are not visible to later pairs of the same ENV; `$A` "
          "expands to the previous value (usually empty).",
      fix="Split into two ENV instructions.", bad="ENV A=1 B=$A", good="ENV A=1\nENV B=$A")
def dl3044(ctx: Context) -> Iterator[Finding]:
    # Variables defined before (by ARG or ENV) are fine: `$A` then means the old value on
    # purpose (e.g. `ENV PATH=/x:$PATH`).
    defined: set[str] = set()
    for it in ctx.items:
        if it.outer is not None:
            continue  # hadolint checks ONBUILD triggers only for RUN rules (and DL3064)
        ins = it.instr
        if isinstance(ins, n.From) and it.outer is None:
            defined = set()
        elif isinstance(ins, n.Arg):
            defined.update(d.name for d in ins.decls)
        elif isinstance(ins, n.Env):
            here: set[str] = set()
            bad = False
            for kv in ins.pairs:
                refs = {a or b for a, b in _VAR.findall(kv.value)}
                if refs & (here - defined):
                    bad = True
                here.add(kv.key)
            if bad:
                yield ctx.finding("DL3044", it)
            defined |= here


def _relative_dest(dest: str) -> bool:
    d = unquote(dest)
    return not (d.startswith("/") or d.startswith("$") or d[1:3] in (":\\", ":/"))


@rule("DL3045", W, "`COPY` to a relative destination without `WORKDIR` set.",
      why="A relative destination is relative to the base image's WORKDIR, which you do not "
          "control.", fix="Set WORKDIR first or use an absolute destination.",
      bad="FROM debian:12\nCOPY app.py app.py", good="FROM debian:12\nWORKDIR /app\n"
      "COPY app.py app.py")
def dl3045(ctx: Context) -> Iterator[Finding]:
    workdir: dict[str | None, bool] = {}
    current: str | None = None
    for it in ctx.items:
        if it.outer is not None:
            continue  # hadolint checks ONBUILD triggers only for RUN rules (and DL3064)
        ins = it.instr
        if isinstance(ins, n.From) and it.outer is None:
            name = ins.stage_name or ins.image
            workdir[name] = workdir.get(ins.image, False)
            current = name
        elif isinstance(ins, n.Workdir):
            workdir[current] = True
        elif isinstance(ins, n.Copy):
            if workdir.get(current):
                continue
            if _relative_dest(ins.dest):
                yield ctx.finding("DL3045", it)


@rule("DL3057", N, "`HEALTHCHECK` instruction missing.", default_enabled=False,
      why="Without a HEALTHCHECK orchestrators cannot tell a hung service from a healthy one.",
      fix="Add a HEALTHCHECK to the final stage.", bad="FROM nginx:1.27",
      good="FROM nginx:1.27\nHEALTHCHECK CMD curl -f http://localhost/ || exit 1")
def dl3057(ctx: Context) -> Iterator[Finding]:
    stages = ctx.stages
    if not stages:
        return
    # The final stage needs a HEALTHCHECK, its own or one inherited through `FROM <stage>`.
    has: dict[str, bool] = {}
    ok = False
    for s in stages:
        ok = any(isinstance(i.instr, n.Healthcheck) for i in s.items) \
            or has.get(s.from_.image, False)
        if s.name:
            has[s.name] = ok
    if not ok:
        yield ctx.finding("DL3057", stages[-1].from_)


@rule("DL3059", N, "Multiple consecutive `RUN` instructions. Consider consolidation.",
      why="Each RUN is a layer; consecutive simple RUNs can usually be one, which is smaller "
          "and faster to pull.", fix="Join them with `&&`.",
      bad="RUN apt-get update\nRUN apt-get install -y curl",
      good="RUN apt-get update && apt-get install -y curl")
def dl3059(ctx: Context) -> Iterator[Finding]:
    prev: tuple[tuple[str, ...], int] | None = None
    for ins in ctx.df.instructions:
        if isinstance(ins, n.Run):
            flags = tuple(sorted(str(f) for f in ins.flags))
            count = len(ctx.script(ins).commands)
            # Chained RUNs (`a && b`) are deliberate; only single-command neighbours count.
            if prev is not None and prev[0] == flags and count <= 1 and prev[1] <= 1:
                yield ctx.finding("DL3059", ins)
            prev = (flags, count)
        else:
            prev = None


@rule("DL3061", E, "Invalid instruction order. Dockerfile must begin with `FROM`, `ARG` or "
      "comment.",
      why="Only ARG may come before the first FROM; anything else is a build error.",
      fix="Start with FROM (ARGs for the FROM line may come first).",
      bad="RUN make\nFROM debian:12", good="FROM debian:12\nRUN make")
def dl3061(ctx: Context) -> Iterator[Finding]:
    for it in ctx.items:
        if it.outer is not None:
            continue
        if isinstance(it.instr, n.From):
            return
        if not isinstance(it.instr, n.Arg):
            yield ctx.finding("DL3061", it)


_RESERVED_STAGE = frozenset({"scratch", "context"})


@rule("DL3063", W, "stage name should not be a reserved word",
      why="`scratch` and `context` have special meanings in FROM and COPY --from.",
      fix="Pick another stage name.", bad="FROM debian:12 AS scratch",
      good="FROM debian:12 AS base")
def dl3063(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.From, onbuild=False):
        if ins.stage_name and ins.stage_name.lower() in _RESERVED_STAGE:
            yield ctx.finding("DL3063", it)


# hadolint 2.15.1's lists (src/Hadolint/Rule/DL3064.hs): well-known secret variable names,
# and substrings that mark a name as sensitive.
_SECRET_NAMES = frozenset({
    "ACCESS_TOKEN", "APPLICATION_KEY", "APP_SECRET", "AUTH_TOKEN", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "BITTREX_API_KEY", "BITTREX_API_SECRET", "CF_PASSWORD",
    "CF_USERNAME", "CIRCLE_TOKEN", "CI_DEPLOY_PASSWORD", "CI_DEPLOY_USER", "DOCKERHUB_PASSWORD",
    "DOCKER_EMAIL", "DOCKER_PASSWORD", "DOCKER_USERNAME", "FACEBOOK_ACCESS_TOKEN",
    "FACEBOOK_APP_ID", "FACEBOOK_APP_SECRET", "FIREBASE_API_TOKEN", "FIREBASE_TOKEN",
    "FOSSA_API_KEY", "GH_ENTERPRISE_TOKEN", "GH_TOKEN", "GITHUB_ENTERPRISE_TOKEN",
    "GITHUB_TOKEN", "HEROKU_API_KEY", "HEROKU_API_USER", "NPM_AUTH_TOKEN", "NPM_TOKEN",
    "OKTA_AUTHN_GROUPID", "OKTA_CLIENT_ORGURL", "OKTA_CLIENT_TOKEN", "OKTA_OAUTH2_CLIENTID",
    "OKTA_OAUTH2_CLIENTSECRET", "OPENAI_API_KEY", "OS_PASSWORD", "OS_USERNAME",
    "POSTGRES_PASSWORD", "SLACK_TOKEN", "STRIPE_API_KEY", "STRIPE_DEVICE_NAME",
    "TRAVIS_OS_NAME", "TRAVIS_SECURE_ENV_VARS", "TRAVIS_SUDO", "VAULT_CLIENT_KEY",
    "VAULT_TOKEN"})
_SECRET_PARTS = ("api_key", "client_key", "password", "private", "secret", "token", "username")


def is_secret_name(name: str) -> bool:
    return name.upper() in _SECRET_NAMES or any(p in name.lower() for p in _SECRET_PARTS)


@rule("DL3064", W, "Potentially sensitive data should not be used in the `ARG` or `ENV` "
      "commands",
      why="ARG and ENV values are stored in the image history and config, readable by anyone "
          "who can pull the image.",
      fix="Use a build secret: `RUN --mount=type=secret,id=…`.",
      bad="ARG AWS_SECRET_ACCESS_KEY", good="RUN --mount=type=secret,id=aws ./deploy.sh")
def dl3064(ctx: Context) -> Iterator[Finding]:
    for it in ctx.items:
        names = declared_names(it.instr)
        if any(is_secret_name(x) for x in names):
            yield ctx.finding("DL3064", it)


@rule("DL3065", W, "Setting `FROM --platform` to predefined `$TARGETPLATFORM` in is redundant "
      "as this is the default behavior",
      why="FROM already uses the target platform; the flag adds noise.",
      fix="Drop the flag.", bad="FROM --platform=$TARGETPLATFORM debian:12",
      good="FROM debian:12")
def dl3065(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.From, onbuild=False):
        f = ins.flag("platform")
        if f is not None and (f.value or "") in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
            yield ctx.finding("DL3065", it)


@rule("DL3066", N, "Non-numeric user-id may not be resolvable by host system",
      why="Names resolve through the image's /etc/passwd; Kubernetes `runAsNonRoot` and host "
          "tools see only numbers.", fix="Use a numeric UID (and GID).",
      bad="USER app", good="USER 10001:10001")
def dl3066(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.User, onbuild=False):
        for part in ins.user.strip().split(":"):
            if part and not part.isdigit() and not part.startswith("$"):
                yield ctx.finding("DL3066", it)
                break


@rule("DL3067", W, "Do not copy an entire filesystem from another stage",
      why="`COPY --from=x / /` overwrites the whole root filesystem, including /etc/passwd and "
          "package databases, and bloats the layer.",
      fix="Copy only the paths you need.", bad="COPY --from=build / /",
      good="COPY --from=build /app /app")
def dl3067(ctx: Context) -> Iterator[Finding]:
    for ins, it in ctx.each(n.Copy, onbuild=False):
        if ins.flag("from") is not None and any(unquote(s) == "/" for s in ins.sources) \
                and unquote(ins.dest) == "/":
            yield ctx.finding("DL3067", it)


@rule("DL4000", E, "MAINTAINER is deprecated",
      why="MAINTAINER has been deprecated since Docker 1.13; labels carry the same data in a "
          "standard key.", fix="Use `LABEL org.opencontainers.image.authors=…` "
          "(`pybuild lint --fix` does it).",
      bad="MAINTAINER Jane <jane@example.com>",
      good='LABEL org.opencontainers.image.authors="Jane <jane@example.com>"', fixable=True)
def dl4000(ctx: Context) -> Iterator[Finding]:
    for _ins, it in ctx.each(n.Maintainer, onbuild=False):
        yield ctx.finding("DL4000", it)


def _multiple(ctx: Context, kind: type[n.Instruction], code: str) -> Iterator[Finding]:
    seen: set[int] = set()
    for _ins, it in ctx.each(kind, onbuild=False):
        if it.stage in seen:
            yield ctx.finding(code, it)
        seen.add(it.stage)


@rule("DL4003", W, "Multiple `CMD` instructions found. If you list more than one `CMD` then "
      "only the last `CMD` will take effect",
      why="Only the last CMD of a stage counts.", fix="Keep one CMD.",
      bad="CMD a\nCMD b", good='CMD ["b"]')
def dl4003(ctx: Context) -> Iterator[Finding]:
    return _multiple(ctx, n.Cmd, "DL4003")


@rule("DL4004", E, "Multiple `ENTRYPOINT` instructions found. If you list more than one "
      "`ENTRYPOINT` then only the last `ENTRYPOINT` will take effect",
      why="Only the last ENTRYPOINT of a stage counts.", fix="Keep one ENTRYPOINT.",
      bad="ENTRYPOINT a\nENTRYPOINT b", good='ENTRYPOINT ["b"]')
def dl4004(ctx: Context) -> Iterator[Finding]:
    return _multiple(ctx, n.Entrypoint, "DL4004")
