"""hadolint DL rules that look inside RUN commands (package managers, downloads, shells).

Commands come from the real shell parse in builder.lint.shell; a rule never pattern-matches
the raw command line. Semantics follow hadolint 2.15.1 (and its test suite, which
tests/conformance/test_hadolint_rules.py replays), with one deliberate extension: RUNs whose
script is a here-document are linted (hadolint does not look inside heredocs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from builder.errors import Severity
from builder.lint.context import Context, Item
from builder.lint.finding import Finding
from builder.lint.rule import rule
from builder.lint.rules.common import has_cache_dir, unquote
from builder.lint.shell import Command, Script
from builder.lint.shell import parse as parse_shell
from builder.syntax import nodes as n

E, W, N = Severity.ERROR, Severity.WARNING, Severity.INFO

RunCheck = Callable[[Script, n.Run, Item], bool]


def runs(ctx: Context, onbuild: bool = True) -> Iterator[tuple[n.Run, Item, Script]]:
    for ins, it in ctx.each(n.Run, onbuild=onbuild):
        yield ins, it, ctx.script(ins)


def _simple(ctx: Context, code: str, bad: Callable[[Script, n.Run], bool],
            onbuild: bool = True) -> Iterator[Finding]:
    for ins, it, sc in runs(ctx, onbuild):
        if bad(sc, ins):
            yield ctx.finding(code, it)


def _subcommand(cmd: Command, names: tuple[str, ...]) -> bool:
    return any(a in names for a in cmd.args_no_flags())


def _after(cmd: Command, names: tuple[str, ...]) -> list[str]:
    """Non-flag arguments after the first one in `names` (hadolint's stripInstallPrefix)."""
    args = list(cmd.args_no_flags())
    for i, a in enumerate(args):
        if a in names:
            rest = args[i + 1:]
            while rest and rest[0] in names:
                rest = rest[1:]
            return rest
    return []


def _clean_after(sc: Script, is_use: Callable[[Command], bool],
                 is_clean: Callable[[Command], bool]) -> bool:
    """True when some command after the last `is_use` command cleans up (order matters:
    cleaning before installing leaves the cache in the layer)."""
    last = max((i for i, c in enumerate(sc.commands) if is_use(c)), default=-1)
    if last < 0:
        return True
    return any(is_clean(c) for c in sc.commands[last + 1:])


# ---------------------------------------------------------------------------------------------
@rule("DL3001", N, "For some bash commands it makes no sense running them in a Docker "
      "container like `ssh`, `vim`, `shutdown`, `service`, `ps`, `free`, `top`, `kill`, "
      "`mount`, `ifconfig`",
      why="Interactive or system-management tools do nothing useful at build time.",
      fix="Remove the command.", bad="RUN service nginx start", good="CMD [\"nginx\"]")
def dl3001(ctx: Context) -> Iterator[Finding]:
    names = ("ssh", "vim", "shutdown", "service", "ps", "free", "top", "kill", "mount",
             "ifconfig")
    return _simple(ctx, "DL3001", lambda sc, _: sc.uses(*names))


@rule("DL3003", W, "Use WORKDIR to switch to a directory",
      why="`cd` lasts only for one RUN; WORKDIR states the directory for every later step and "
          "is easier to read.", fix="Use WORKDIR.", bad="RUN cd /app && make",
      good="WORKDIR /app\nRUN make")
def dl3003(ctx: Context) -> Iterator[Finding]:
    return _simple(ctx, "DL3003", lambda sc, _: sc.uses("cd"), onbuild=False)


@rule("DL3004", E, "Do not use sudo as it leads to unpredictable behavior. Use a tool like "
      "gosu to enforce root",
      why="Build steps already run as the current USER; sudo needs a TTY and a sudoers setup "
          "and behaves differently across images.",
      fix="Switch with USER, or use gosu/su-exec at run time.", bad="RUN sudo apt-get update",
      good="USER root\nRUN apt-get update")
def dl3004(ctx: Context) -> Iterator[Finding]:
    return _simple(ctx, "DL3004", lambda sc, _: sc.uses("sudo"))


# -- apt ---------------------------------------------------------------------------------------
def _apt_install(c: Command) -> bool:
    return c.name == "apt-get" and c.has_arg("install")


@rule("DL3008", W, "Pin versions in apt get install. Instead of `apt-get install <package>` "
      "use `apt-get install <package>=<version>`",
      why="Unpinned packages make rebuilds install whatever is newest: builds stop being "
          "reproducible and can break without any change to the Dockerfile.",
      fix="Pin `package=version`.", bad="RUN apt-get install -y curl",
      good="RUN apt-get install -y curl=7.88.1-10+deb12u5")
def dl3008(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        for c in sc.commands:
            if _apt_install(c):
                pkgs = [a for a in c.without_flag_values("t", "target-release").args_no_flags()
                        if a != "install"]
                if any(not ("=" in p or "/" in p or p.endswith(".deb")) for p in pkgs):
                    return True
        return False
    return _simple(ctx, "DL3008", bad)


def _stage_scoped(ctx: Context, code: str, forgot: Callable[[Script, n.Run], bool]
                  ) -> Iterator[Finding]:
    """hadolint's DL3009/DL3060 policy: a forgotten cleanup matters only in the final stage or
    in a stage that a later FROM builds on (other stages' layers never reach the image)."""
    pending: list[tuple[Item, str | None, int]] = []
    bases: set[str] = set()
    current: str | None = None
    stage = -1
    for it in ctx.items:
        ins = it.instr
        if isinstance(ins, n.From) and it.outer is None:
            stage += 1
            bases.add(ins.image)
            current = ins.stage_name
        elif isinstance(ins, n.Run) and forgot(ctx.script(ins), ins):
            pending.append((it, current, stage))
    for it, alias, st in pending:
        # An ONBUILD trigger runs in the child image, whose layers always ship.
        if it.outer is not None or st == stage or (alias is not None and alias in bases):
            yield ctx.finding(code, it)


@rule("DL3009", N, "Delete the apt lists (/var/lib/apt/lists) after installing something",
      why="`apt-get update` downloads package lists (tens of MB) that stay in the layer unless "
          "removed in the same RUN.",
      fix="End the RUN with `rm -rf /var/lib/apt/lists/*`, or mount the lists as a cache "
          "(`RUN --mount=type=cache,target=/var/lib/apt/lists`).",
      bad="RUN apt-get update && apt-get install -y curl",
      good="RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*")
def dl3009(ctx: Context) -> Iterator[Finding]:
    def forgot(sc: Script, ins: n.Run) -> bool:
        updates = any(c.name in ("apt-get", "apt", "aptitude") and c.has_arg("update")
                      for c in sc.commands)
        if not updates:
            return False
        if any(c.name == "rm" and c.has_arg("-rf", "/var/lib/apt/lists/*") for c in sc.commands):
            return False
        if has_cache_dir(ins, "/var/lib/apt/lists"):
            return False
        return not (has_cache_dir(ins, "/var/lib/apt") and has_cache_dir(ins, "/var/cache/apt"))
    return _stage_scoped(ctx, "DL3009", forgot)


@rule("DL3014", W, "Use the `-y` switch to avoid manual input `apt-get -y install <package>`",
      why="Without `-y` apt-get asks for confirmation, which fails (or hangs) in a build.",
      fix="Add `-y`.", bad="RUN apt-get install curl", good="RUN apt-get install -y curl")
def dl3014(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        for c in sc.commands:
            if not _apt_install(c):
                continue
            if c.has_flag("y", "yes", "assume-yes"):
                continue
            quiet = sum(1 for f in c.flags if f in ("q", "quiet"))
            if quiet >= 2 or c.has_arg("-q=2", "--quiet=2", "-qq"):
                continue
            return True
        return False
    return _simple(ctx, "DL3014", bad)


@rule("DL3015", N, "Avoid additional packages by specifying `--no-install-recommends`",
      why="Recommended packages are rarely needed in a container and can double its size.",
      fix="Add `--no-install-recommends`.", bad="RUN apt-get install -y curl",
      good="RUN apt-get install -y --no-install-recommends curl")
def dl3015(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        return any(_apt_install(c) and not c.has_flag("no-install-recommends")
                   and not c.has_arg("APT::Install-Recommends=false") for c in sc.commands)
    return _simple(ctx, "DL3015", bad)


@rule("DL3027", W, "Do not use apt as it is meant to be an end-user tool, use apt-get or "
      "apt-cache instead",
      why="`apt` has no stable command-line interface and warns when scripted.",
      fix="Use apt-get or apt-cache.", bad="RUN apt install -y curl",
      good="RUN apt-get install -y curl")
def dl3027(ctx: Context) -> Iterator[Finding]:
    return _simple(ctx, "DL3027", lambda sc, _: sc.uses("apt"))


# -- pip -------------------------------------------------------------------------------------
_PIP = re.compile(r"^pip[0-9.]*$")
_PYTHON = re.compile(r"^python[0-9.]*$")


def pip_install(c: Command, *, pipx: bool = False) -> bool:
    """`pip install …`, `pip3.12 install …` or `python -m pip install …` (and `pipx install`
    when `pipx`)."""
    base = c.name.rsplit("/", 1)[-1]
    if _PIP.match(base) or (pipx and base == "pipx"):
        return "install" in c.args
    if _PYTHON.match(base):
        args = c.args
        return any(args[i] == "-m" and args[i + 1] == "pip" for i in range(len(args) - 1)) \
            and "install" in args
    return False


_PIP_VALUE_FLAGS = ("abi", "b", "build", "e", "editable", "extra-index-url", "f", "find-links",
                    "i", "index-url", "implementation", "no-binary", "only-binary", "platform",
                    "prefix", "progress-bar", "proxy", "python-version", "root", "src", "t",
                    "target", "trusted-host", "upgrade-strategy", "root-user-action", "python")
_VCS = ("git+file", "git+https", "git+ssh", "git+http", "git+git", "git", "hg+file", "hg+http",
        "hg+https", "hg+ssh", "hg+static-http", "svn", "svn+svn", "svn+http", "svn+https",
        "svn+ssh", "bzr+http", "bzr+https", "bzr+ssh", "bzr+sftp", "bzr+ftp", "bzr+lp")


def _pip_pinned(p: str) -> bool:
    vcs = p.startswith(_VCS)
    return (any(s in p for s in ("==", ">=", "<=", ">", "<", "!=", "~=", "==="))
            or (vcs and "@" in p) or p.endswith((".whl", ".tar.gz"))
            or (not vcs and "/" in p))


@rule("DL3013", W, "Pin versions in pip. Instead of `pip install <package>` use `pip install "
      "<package>==<version>` or `pip install --requirement <requirements file>`",
      why="Unpinned packages make rebuilds pick up new releases silently.",
      fix="Pin `package==version`, or install from a requirements/constraints file.",
      bad="RUN pip install django", good="RUN pip install django==5.0.6")
def dl3013(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        for c in sc.commands:
            if not pip_install(c, pipx=True) or c.has_flag("constraint", "c"):
                continue
            if c.has_arg("--requirement", "-r", "."):
                continue
            args = list(c.without_flag_values(*_PIP_VALUE_FLAGS).args_no_flags())
            if "install" not in args:
                continue
            pkgs = args[args.index("install") + 1:]
            while pkgs and pkgs[0] == "install":
                pkgs = pkgs[1:]
            if not all(_pip_pinned(p) for p in pkgs):
                return True
        return False
    return _simple(ctx, "DL3013", bad)


_FALSY = ("0", "off", "no", "false")


def env_at(ctx: Context) -> dict[int, dict[str, str]]:
    """For each item index: ENV variables in effect (stage-scoped, inherited through
    `FROM <stage>`) merged over every ARG default declared so far (hadolint treats ARG values
    as global)."""
    out: dict[int, dict[str, str]] = {}
    stage_env: dict[str, dict[str, str]] = {}
    env: dict[str, str] = {}
    args: dict[str, str] = {}
    for idx, it in enumerate(ctx.items):
        ins = it.instr
        if isinstance(ins, n.From) and it.outer is None:
            env = dict(stage_env.get(ins.image, {}))
            stage_env[ins.stage_name or ins.image] = env
        elif isinstance(ins, n.Env) and it.outer is None:
            for kv in ins.pairs:
                env[kv.key] = unquote(kv.value)
        elif isinstance(ins, n.Arg):
            for d in ins.decls:
                if d.default is not None:
                    args[d.name] = unquote(d.default)
        out[idx] = {**args, **env}
    return out


@rule("DL3042", W, "Avoid use of cache directory with pip. Use `pip install --no-cache-dir "
      "<package>`",
      why="pip's download cache ends up in the layer and is never used again.",
      fix="Add `--no-cache-dir`, set `PIP_NO_CACHE_DIR=1`, or mount the cache "
          "(`RUN --mount=type=cache,target=/root/.cache/pip`).",
      bad="RUN pip install django==5.0.6",
      good="RUN pip install --no-cache-dir django==5.0.6")
def dl3042(ctx: Context) -> Iterator[Finding]:
    envs = env_at(ctx)
    for idx, it in enumerate(ctx.items):
        ins = it.instr
        if not isinstance(ins, n.Run):
            continue
        if has_cache_dir(ins, "/root/.cache/pip"):
            continue
        sc = ctx.script(ins)
        base = envs[idx].get("PIP_NO_CACHE_DIR")
        exported = None
        for c in sc.commands:
            if c.name == "export":
                for a in c.args:
                    k, eq, v = a.partition("=")
                    if eq and k == "PIP_NO_CACHE_DIR":
                        exported = v
            if not pip_install(c) or c.has_flag("no-cache-dir"):
                continue
            val = dict(c.env).get("PIP_NO_CACHE_DIR", exported if exported is not None else base)
            if val is not None and val.lower() not in _FALSY:
                continue
            yield ctx.finding("DL3042", it)
            break


# -- npm / yarn / gem / go ----------------------------------------------------------------------
def _npm_pinned(p: str) -> bool:
    if p.startswith(("git://", "git+ssh://", "git+http://", "git+https://")):
        return "#" in p
    if p.endswith((".tar", ".tar.gz", ".tgz")) or p.startswith(("/", "./", "../", "~/")):
        return True
    if p.startswith("@"):
        p = p.split("/", 1)[1] if "/" in p else ""
    return "@" in p


# npm options that take a separate value word (`--registry URL`), so the value is no package.
_NPM_VALUE_FLAGS = ("loglevel", "registry", "prefix", "cache", "userconfig", "globalconfig",
                    "tag", "otp", "workspace", "w", "install-strategy", "omit", "include")


@rule("DL3016", W, "Pin versions in npm. Instead of `npm install <package>` use `npm install "
      "<package>@<version>`",
      why="Unpinned npm packages resolve to the newest release at build time.",
      fix="Pin `package@version` (or install from package-lock.json with `npm ci`).",
      bad="RUN npm install -g typescript", good="RUN npm install -g typescript@5.4.5")
def dl3016(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        for c in sc.commands:
            if c.name != "npm" or not c.has_arg("install"):
                continue
            plain = c.args_no_flags()
            if not plain or plain[0] != "install":
                continue
            c = c.without_flag_values(*_NPM_VALUE_FLAGS)
            if not all(_npm_pinned(p) for p in _after(c, ("install",))):
                return True
        return False
    return _simple(ctx, "DL3016", bad)


@rule("DL3060", N, "`yarn cache clean` missing after `yarn install` was run.",
      why="yarn's cache stays in the layer.",
      fix="Run `yarn cache clean` in the same RUN, or mount the cache "
          "(`RUN --mount=type=cache,target=/root/.cache/yarn`).",
      bad="RUN yarn install", good="RUN yarn install && yarn cache clean")
def dl3060(ctx: Context) -> Iterator[Finding]:
    def forgot(sc: Script, ins: n.Run) -> bool:
        if has_cache_dir(ins, "/root/.cache/yarn"):
            return False
        return not _clean_after(
            sc, lambda c: c.name == "yarn" and c.has_arg("install"),
            lambda c: c.name == "yarn" and c.has_arg("cache") and c.has_arg("clean"))
    return _stage_scoped(ctx, "DL3060", forgot)


@rule("DL3028", W, "Pin versions in gem install. Instead of `gem install <gem>` use `gem "
      "install <gem>:<version>`",
      why="Unpinned gems resolve to the newest release at build time.",
      fix="Pin `gem:version` or pass `--version`.", bad="RUN gem install bundler",
      good="RUN gem install bundler:2.5.10")
def dl3028(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        for c in sc.commands:
            if c.name != "gem" or not c.has_arg("install", "i"):
                continue
            if c.has_flag("v", "version"):
                continue
            args = list(c.args)
            start = next(i for i, a in enumerate(args) if a in ("install", "i")) + 1
            for a in args[start:]:
                if a.startswith("-"):
                    break
                if ":" not in a:
                    return True
        return False
    return _simple(ctx, "DL3028", bad)


def _go_pinned(p: str) -> bool:
    if p.startswith(("/", "./", "../")) or p == ".":
        return True
    _, at, version = p.partition("@")
    return bool(at) and version != "latest"


@rule("DL3062", W, "Pin versions in go. Instead of `go install <package>` use `go install "
      "<package>@<version>`",
      why="Without a version go resolves the newest module version at build time.",
      fix="Append `@vX.Y.Z`.", bad="RUN go install golang.org/x/tools/cmd/goimports",
      good="RUN go install golang.org/x/tools/cmd/goimports@v0.21.0")
def dl3062(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        for c in sc.commands:
            if c.name != "go" or not c.args:
                continue
            args = list(c.args)
            sub = next((a for a in args if not a.startswith("-")), None)
            if sub not in ("install", "get", "run"):
                continue
            rest = [a for a in args[args.index(sub) + 1:]]
            pkgs = [a for a in rest if not a.startswith("-")]
            if sub == "run":
                pkgs = pkgs[:1]
            if any(not _go_pinned(p) for p in pkgs):
                return True
        return False
    return _simple(ctx, "DL3062", bad)


# -- apk ---------------------------------------------------------------------------------------
def _apk_add(c: Command) -> bool:
    return c.name == "apk" and c.has_arg("add")


@rule("DL3018", W, "Pin versions in apk add. Instead of `apk add <package>` use `apk add "
      "<package>=<version>`",
      why="Unpinned packages make rebuilds install whatever is newest.",
      fix="Pin `package=version` (or `package~version`).", bad="RUN apk add curl",
      good="RUN apk add curl=8.5.0-r0")
def dl3018(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        for c in sc.commands:
            if _apk_add(c):
                pkgs = [a for a in c.without_flag_values("t", "virtual", "repository", "X")
                        .args_no_flags() if a != "add"]
                if any(not (any(ch in p for ch in "=~<>") or p.endswith(".apk")) for p in pkgs):
                    return True
        return False
    return _simple(ctx, "DL3018", bad)


@rule("DL3019", N, "Use the `--no-cache` switch to avoid the need to use `--update` and remove "
      "`/var/cache/apk/*` when done installing packages",
      why="Without `--no-cache` the package index stays in the layer.",
      fix="Use `apk add --no-cache`, or mount /var/cache/apk as a cache.",
      bad="RUN apk add curl=8.5.0-r0", good="RUN apk add --no-cache curl=8.5.0-r0")
def dl3019(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, ins: n.Run) -> bool:
        if has_cache_dir(ins, "/var/cache/apk") or has_cache_dir(ins, "/etc/apk/cache"):
            return False
        return any(_apk_add(c) and not c.has_flag("no-cache") for c in sc.commands)
    return _simple(ctx, "DL3019", bad)


# -- yum / dnf / zypper --------------------------------------------------------------------------
def _rpm_pinned(p: str) -> bool:
    return bool(re.search(r"-[0-9]", p)) or p.endswith(".rpm")


def _rpm_versions(ctx: Context, code: str, names: tuple[str, ...]) -> Iterator[Finding]:
    envs = env_at(ctx)
    for idx, it in enumerate(ctx.items):
        ins = it.instr
        if not isinstance(ins, n.Run):
            continue
        sc = ctx.script(ins)
        if not any(c.name in names for c in sc.commands):
            continue
        if "$" in sc.text:
            # Resolve variables the file defines (ARG/ENV) so `pkg-${version}` is judged by
            # its value, as hadolint does.
            sc = parse_shell(_substitute(sc.text, envs[idx]))
        for c in sc.commands:
            if c.name not in names:
                continue
            plain = c.args_no_flags()
            if "install" not in plain:
                continue
            if "group" in plain[:plain.index("install")] or "groupinstall" in plain:
                continue
            module = "module" in plain[:plain.index("install")]
            pkgs = _after(c, ("install",))
            if any(not (":" in p if module else _rpm_pinned(p)) for p in pkgs):
                yield ctx.finding(code, it)
                break


def _substitute(text: str, env: dict[str, str]) -> str:
    """Replace `$name` / `${name}` by known values, leaving unknown references alone."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "$" and i + 1 < len(text):
            braced = text[i + 1] == "{"
            j = i + 2 if braced else i + 1
            k = j
            while k < len(text) and (text[k].isalnum() or text[k] == "_"):
                k += 1
            name = text[j:k]
            end = k + 1 if braced and k < len(text) and text[k] == "}" else k
            if name and name in env and (not braced or end == k + 1):
                out.append(env[name])
                i = end
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _pm_cmd(c: Command, names: tuple[str, ...], subs: tuple[str, ...]) -> bool:
    return c.name in names and _subcommand(c, subs)


@rule("DL3030", W, "Use the -y switch to avoid manual input `yum install -y <package>`",
      why="Without `-y` yum asks for confirmation and the build fails.", fix="Add `-y`.",
      bad="RUN yum install httpd-2.4.24", good="RUN yum install -y httpd-2.4.24")
def dl3030(ctx: Context) -> Iterator[Finding]:
    return _simple(ctx, "DL3030", lambda sc, _: any(
        _pm_cmd(c, ("yum",), ("install", "groupinstall", "localinstall", "reinstall"))
        and not c.has_flag("y", "assumeyes") for c in sc.commands))


def _yum_use(c: Command) -> bool:
    return _pm_cmd(c, ("yum",), ("install", "groupinstall", "localinstall", "reinstall",
                                 "update", "upgrade"))


def _rm_any(c: Command, prefixes: tuple[str, ...]) -> bool:
    return c.name == "rm" and any(a.startswith(prefixes) for a in c.args)


@rule("DL3032", W, "`yum clean all` missing after yum command.",
      why="yum's metadata and package cache stay in the layer.",
      fix="End the RUN with `yum clean all`.", bad="RUN yum install -y httpd-2.4.24",
      good="RUN yum install -y httpd-2.4.24 && yum clean all")
def dl3032(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, ins: n.Run) -> bool:
        if has_cache_dir(ins, "/var/cache/yum"):
            return False
        return not _clean_after(
            sc, _yum_use,
            lambda c: (c.name == "yum" and c.has_arg("clean") and c.has_arg("all"))
            or _rm_any(c, ("/var/cache/yum",)))
    return _simple(ctx, "DL3032", bad)


@rule("DL3033", W, "Specify version with `yum install -y <package>-<version>`.",
      why="Unpinned packages make rebuilds install whatever is newest.",
      fix="Pin `package-version`.", bad="RUN yum install -y httpd",
      good="RUN yum install -y httpd-2.4.24")
def dl3033(ctx: Context) -> Iterator[Finding]:
    return _rpm_versions(ctx, "DL3033", ("yum",))


_DNF = ("dnf", "microdnf")
_DNF_USE = ("install", "in", "upgrade", "up", "upgrade-minimal", "up-min", "reinstall", "rei",
            "groupinstall", "update", "localinstall")


@rule("DL3038", W, "Use the -y switch to avoid manual input `dnf install -y <package>`",
      why="Without `-y` dnf asks for confirmation and the build fails.", fix="Add `-y`.",
      bad="RUN dnf install httpd-2.4.24", good="RUN dnf install -y httpd-2.4.24")
def dl3038(ctx: Context) -> Iterator[Finding]:
    return _simple(ctx, "DL3038", lambda sc, _: any(
        _pm_cmd(c, _DNF, ("install", "groupinstall", "localinstall", "reinstall"))
        and not c.has_flag("y", "assumeyes") for c in sc.commands))


@rule("DL3040", W, "`dnf clean all` missing after dnf command.",
      why="dnf's metadata and package cache stay in the layer.",
      fix="End the RUN with `dnf clean all`, or mount /var/cache/libdnf5 as a cache.",
      bad="RUN dnf install -y mariadb-10.4",
      good="RUN dnf install -y mariadb-10.4 && dnf clean all")
def dl3040(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, ins: n.Run) -> bool:
        if any(has_cache_dir(ins, d) for d in ("/var/cache/libdnf5", "/var/cache/dnf",
                                               "/var/cache/yum")):
            return False
        # The cleanup must be by the same tool: `microdnf clean all` does not clean dnf's cache.
        return any(_dnf_forgot(sc, tool) for tool in _DNF)
    return _simple(ctx, "DL3040", bad)


def _dnf_forgot(sc: Script, tool: str) -> bool:
    def use(c: Command) -> bool:
        return c.name == tool and _subcommand(c, _DNF_USE)

    def clean(c: Command) -> bool:
        return (c.name == tool and c.has_arg("clean") and c.has_arg("all")) \
            or _rm_any(c, ("/var/cache/yum", "/var/cache/dnf"))

    return not _clean_after(sc, use, clean)


@rule("DL3041", W, "Specify version with `dnf install -y <package>-<version>`.",
      why="Unpinned packages make rebuilds install whatever is newest.",
      fix="Pin `package-version`.", bad="RUN dnf install -y httpd",
      good="RUN dnf install -y httpd-2.4.24")
def dl3041(ctx: Context) -> Iterator[Finding]:
    return _rpm_versions(ctx, "DL3041", _DNF)


_ZYPPER_INSTALL = ("install", "in", "remove", "rm", "source-install", "si", "patch")


@rule("DL3034", W, "Non-interactive switch missing from `zypper` command: `zypper install -y`",
      why="Without `-n`/`-y` zypper asks questions and the build fails.",
      fix="Add `-y` (or `--non-interactive`).", bad="RUN zypper install httpd=2.4.24",
      good="RUN zypper install -y httpd=2.4.24")
def dl3034(ctx: Context) -> Iterator[Finding]:
    return _simple(ctx, "DL3034", lambda sc, _: any(
        _pm_cmd(c, ("zypper",), _ZYPPER_INSTALL)
        and not c.has_flag("n", "non-interactive", "y", "no-confirm") for c in sc.commands))


@rule("DL3035", W, "Do not use `zypper dist-upgrade`.",
      why="A distribution upgrade inside an image build changes everything the base image "
          "pinned.", fix="Use a newer base image instead.", bad="RUN zypper dup",
      good="FROM opensuse/leap:15.6")
def dl3035(ctx: Context) -> Iterator[Finding]:
    return _simple(ctx, "DL3035", lambda sc, _: any(
        _pm_cmd(c, ("zypper",), ("dist-upgrade", "dup")) for c in sc.commands))


@rule("DL3036", W, "`zypper clean` missing after zypper use.",
      why="zypper's package cache stays in the layer.",
      fix="End the RUN with `zypper clean`.", bad="RUN zypper install -y mariadb=10.4",
      good="RUN zypper install -y mariadb=10.4 && zypper clean")
def dl3036(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, ins: n.Run) -> bool:
        if has_cache_dir(ins, "/var/cache/zypp"):
            return False
        return not _clean_after(
            sc, lambda c: _pm_cmd(c, ("zypper",), _ZYPPER_INSTALL + ("update", "up", "patch")),
            lambda c: c.name == "zypper" and c.has_arg("clean", "cc"))
    return _simple(ctx, "DL3036", bad)


@rule("DL3037", W, "Specify version with `zypper install -y <package>=<version>`.",
      why="Unpinned packages make rebuilds install whatever is newest.",
      fix="Pin `package=version`.", bad="RUN zypper install -y tomcat",
      good="RUN zypper install -y tomcat=9.0.39")
def dl3037(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        for c in sc.commands:
            if c.name == "zypper" and _subcommand(c, ("install", "in")):
                pkgs = _after(c, ("install", "in"))
                if any(not (any(s in p for s in "=<>") or p.endswith(".rpm")) for p in pkgs):
                    return True
        return False
    return _simple(ctx, "DL3037", bad)


# -- other tools -------------------------------------------------------------------------------
@rule("DL3046", W, "`useradd` without flag `-l` and high UID will result in excessively large "
      "Image.",
      why="useradd writes a sparse /var/log/lastlog sized by the UID; with a big UID the layer "
          "gets huge.", fix="Add `-l` (`--no-log-init`).",
      bad="RUN useradd -u 123456 app", good="RUN useradd -l -u 123456 app")
def dl3046(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        for c in sc.named("useradd"):
            uid = c.flag_value("u", "uid")
            if not c.has_flag("l", "no-log-init") and uid is not None and len(uid) > 5:
                return True
        return False
    return _simple(ctx, "DL3046", bad)


@rule("DL3047", N, "Avoid use of wget without progress bar. Use `wget --progress=dot:giga "
      "<url>`. Or consider using `-q` or `-nv` (shorthands for `--quiet` or `--no-verbose`).",
      why="wget's default bar prints a line per update in non-TTY logs, bloating build logs.",
      fix="Use `--progress=dot:giga`, `-q` or `-nv`.", bad="RUN wget https://x/y.tgz",
      good="RUN wget -nv https://x/y.tgz")
def dl3047(ctx: Context) -> Iterator[Finding]:
    def bad(sc: Script, _: n.Run) -> bool:
        return any(c.name == "wget" and not c.has_flag(
            "progress", "q", "quiet", "no-verbose", "o", "output-file", "a", "append-output")
            and not c.has_arg("-nv") for c in sc.commands)
    return _simple(ctx, "DL3047", bad)


@rule("DL4001", W, "Either use Wget or Curl but not both",
      why="Two download tools means two sets of dependencies and behaviours in one image.",
      fix="Pick one.", bad="RUN wget -nv https://a\nRUN curl -fsSO https://b",
      good="RUN curl -fsSO https://a\nRUN curl -fsSO https://b")
def dl4001(ctx: Context) -> Iterator[Finding]:
    used: set[str] = set()
    for it in ctx.items:
        ins = it.instr
        if isinstance(ins, n.From) and it.outer is None:
            used = set()
        elif isinstance(ins, n.Run):
            here = {c.name for c in ctx.script(ins).commands} & {"curl", "wget"}
            used |= here
            if here and len(used) >= 2:
                yield ctx.finding("DL4001", it)


@rule("DL4005", W, "Use SHELL to change the default shell",
      why="Replacing /bin/sh with a symlink changes every later RUN invisibly.",
      fix='Use `SHELL ["/bin/bash", "-c"]`.', bad="RUN ln -sf /bin/bash /bin/sh",
      good='SHELL ["/bin/bash", "-c"]')
def dl4005(ctx: Context) -> Iterator[Finding]:
    return _simple(ctx, "DL4005", lambda sc, _: any(
        c.name == "ln" and "/bin/sh" in c.args for c in sc.commands))


_NON_POSIX = ("pwsh", "powershell", "cmd")


@rule("DL4006", W, "Set the SHELL option -o pipefail before RUN with a pipe in it. If you are "
      "using /bin/sh in an alpine image or if your shell is symlinked to busybox then consider "
      "explicitly setting your SHELL to /bin/ash, or disable this check",
      why="A pipeline's status is its last command's: `curl … | tar x` succeeds even when the "
          "download fails, so a broken layer is cached as good.",
      fix='Add `SHELL ["/bin/bash", "-o", "pipefail", "-c"]` before the RUN.',
      bad="RUN curl -fsSL https://x | tar xz",
      good='SHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN curl -fsSL https://x | tar xz')
def dl4006(ctx: Context) -> Iterator[Finding]:
    ok = False
    for ins in ctx.df.instructions:
        if isinstance(ins, n.From):
            ok = False
        elif isinstance(ins, n.Shell):
            text = " ".join(ins.argv)
            if text.startswith(_NON_POSIX):
                ok = True
            else:
                ok = any(c.name.rsplit("/", 1)[-1] in ("bash", "zsh", "ash")
                         and c.has_flag("o") and "pipefail" in c.args
                         for c in parse_shell(text).commands)
        elif isinstance(ins, n.Run) and not ok and ctx.script(ins).has_pipes:
            yield ctx.finding("DL4006", ins)


@rule("DL3010", N, "Use `ADD` for extracting archives into an image",
      why="COPY of an archive followed by an extracting RUN keeps the archive in a layer; ADD "
          "extracts local archives in one step.",
      fix="Use `ADD archive.tar /dest/`.",
      bad="COPY app.tar /srv/\nRUN tar -xf /srv/app.tar", good="ADD app.tar /srv/")
def dl3010(ctx: Context) -> Iterator[Finding]:
    from builder.lint.rules.dl_instructions import is_archive

    def base(p: str) -> str:
        p = unquote(p)
        return re.split(r"[/\\]", p)[-1]

    archives: list[tuple[Item, str]] = []
    hit: list[Item] = []
    for it in ctx.items:
        ins = it.instr
        if it.outer is not None:
            continue
        if isinstance(ins, n.From):
            archives = []
        elif isinstance(ins, n.Copy) and ins.flag("from") is None:
            if is_archive(ins.dest):
                archives.append((it, base(ins.dest)))
            else:
                archives += [(it, base(s)) for s in ins.sources if is_archive(s)]
        elif isinstance(ins, n.Run):
            for c in ctx.script(ins).commands:
                tar_x = c.name == "tar" and any(
                    a in ("--extract", "--get") or (a.startswith("-") and "x" in a)
                    for a in c.args)
                unzip = c.name in ("unzip", "gunzip", "bunzip2", "unlzma", "unxz", "zgz",
                                   "uncompress", "zcat", "gzcat")
                if not (tar_x or unzip):
                    continue
                names = {base(a) for a in c.args_no_flags()}
                for src_it, name in archives:
                    if name in names and src_it not in hit:
                        hit.append(src_it)
    for it in hit:
        yield ctx.finding("DL3010", it)
