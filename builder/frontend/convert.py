"""One convert function per instruction: how each changes a stage's steps, config and history
(BuildKit's dockerfile2llb dispatch*; docs/semantics.md is the table of what each does)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import unquote, urlsplit

from builder.frontend import gocompat
from builder.frontend.expand import ExpansionError, ShellLexer
from builder.frontend.flags import SPECS, FlagProblem, parse_flags
from builder.frontend.mounts import MountProblem, parse_mount
from builder.frontend.state import PROXY_ARGS, PlanContext, StageState
from builder.graph import (
    ContextSource,
    Copy,
    Exec,
    GitSource,
    HealthConfig,
    HttpSource,
    ImageSource,
    InlineFile,
    Mkdir,
    Mount,
    StepId,
)
from builder.source import Span
from builder.syntax import nodes as n

Converter = Callable[[PlanContext, StageState, n.Instruction], None]


def flags_of(ctx: PlanContext, inst: n.Instruction,
             keyword: str | None = None) -> dict[str, object]:
    """The instruction's flags checked against BuildKit's table; errors at the flag's span."""
    try:
        return parse_flags(inst, keyword)
    except FlagProblem as p:
        kw = keyword or inst.keyword
        raise ctx.error("DF-FLAG", f"{kw}: {p.message}", p.flag.span,
                        hint=_flag_hint(kw)) from None


def _flag_hint(keyword: str) -> str:
    names = sorted(SPECS.get(keyword, {}))
    if not names:
        return f"{keyword} takes no flags"
    return f"{keyword} accepts: " + ", ".join("--" + x for x in names)


def _list(flags: dict[str, object], name: str) -> tuple[str, ...]:
    """The values of a repeatable flag (none when absent)."""
    value = flags.get(name, ())
    assert isinstance(value, tuple)
    return value


def _no_flags(ctx: PlanContext, inst: n.Instruction) -> None:
    flags_of(ctx, inst)


# ----------------------------------------------------------------------------- paths


def normalize_workdir(current: str, new: str) -> str:
    """system.NormalizeWorkdir on Linux: relative paths chain onto the current dir."""
    if not new.startswith("/"):
        new = posixpath.join("/", current or "/", new)
    return _clean(new)


def _clean(path: str) -> str:
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def resolve_dest(workdir: str, dest: str) -> str:
    """pathRelativeToWorkingDir: absolute destination, keeping a trailing `/` (or `/.`) that
    means "into this directory"."""
    base = workdir or "/"
    if not dest:
        return base
    joined = dest if dest.startswith("/") else posixpath.join(base, dest)
    out = _clean(joined)
    if dest.endswith("/") and not out.endswith("/"):
        out += "/"
    elif dest.endswith("/.") or dest == ".":
        if out != "/":
            out += "/"
    return out


# ----------------------------------------------------------------------------- ENV / LABEL / ARG


def convert_env(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Env)
    pairs = _expanded_pairs(ctx, st, inst)
    for key, value in pairs:
        st.set_env(key, value)
    st.commit("ENV " + " ".join(f"{k}={v}" for k, v in pairs))


def convert_label(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Label)
    pairs = _expanded_pairs(ctx, st, inst)
    st.labels.update(pairs)
    st.commit("LABEL " + " ".join(f"{k}={v}" for k, v in pairs))


def _expanded_pairs(ctx: PlanContext, st: StageState,
                    inst: n.Env | n.Label) -> list[tuple[str, str]]:
    """ENV's or LABEL's pairs, keys and values expanded. Every pair sees the environment from
    before the instruction (`ENV a=1 b=$a` sees the old `a`), as BuildKit expands the whole
    instruction before dispatching it. Raises DF-ARGS for a key that expands to nothing."""
    _no_flags(ctx, inst)
    _legacy_check(ctx, inst)
    pairs = []
    for kv in inst.pairs:
        key = ctx.expand(kv.key, st.run_env, inst)
        value = ctx.expand(kv.value, st.run_env, inst)
        if not key:
            raise ctx.error("DF-ARGS", f"{inst.keyword} names can not be blank",
                            kv.span or inst.span)
        pairs.append((key, value))
    return pairs


def _legacy_check(ctx: PlanContext, inst: n.Env | n.Label) -> None:
    if any(kv.legacy for kv in inst.pairs):
        kw = inst.keyword
        ctx.warn("LegacyKeyValueFormat", f'"{kw} key=value" should be used instead of legacy '
                 f'"{kw} key value" format', inst, f"write {kw} {inst.pairs[0].key}=…",
                 "legacy-key-value-format")


def convert_arg(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    """Stage ARG: a --build-arg wins, else the (expanded) default, else the global ARG of the
    same name. The value joins the RUN/expansion environment only (never the image Env)."""
    assert isinstance(inst, n.Arg)
    _no_flags(ctx, inst)
    committed = []
    for decl in inst.decls:
        key = decl.name
        if not key:
            raise ctx.error("DF-ARGS", "ARG names can not be blank", decl.span or inst.span)
        has_value = key in ctx.build_args
        value = decl.default
        has_default = value is not None
        if not has_default and not has_value and key in ctx.meta_args:
            value = ctx.meta_args[key]
            has_default = False
        if has_value:
            value = ctx.build_args[key]
            ctx.consumed.add(key)
        elif has_default and value is not None:
            value = ctx.expand(value, st.run_env, inst)
        if value is not None:
            st.set_arg(key, value)
        st.build_args.append((key, value))
        committed.append(key if value is None else f"{key}={value}")
    st.commit("ARG " + " ".join(committed))


# ----------------------------------------------------------------------------- RUN


def _shell_args(st: StageState, args: list[str]) -> tuple[str, ...]:
    return (*st.active_shell, " ".join(args))


def _run_history(st: StageState, argv: tuple[str, ...]) -> str:
    pairs = []
    for key, value in st.build_args:
        v = st.run_env.get(key, value if value is not None else "")
        pairs.append(f"{key}={v}")
    prefix = [f"|{len(pairs)}", *pairs] if pairs else []
    return "RUN " + " ".join([*prefix, *argv])


_HEREDOC_ONLY = re.compile(r"^[0-9]*<<-?\s*([\"']?)([^\s\"']+)\1\s*$")


def convert_run(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Run)
    flags = flags_of(ctx, inst)
    network = str(flags.get("network", "default"))
    if network not in ("default", "none", "host"):
        raise ctx.error("DF-FLAG", f'RUN: unsupported network mode "{network}"',
                        (inst.flag("network") or inst).span, hint="use default, none or host")
    security = str(flags.get("security", "sandbox"))
    if security not in ("sandbox", "insecure"):
        raise ctx.error("DF-FLAG", f'RUN: unsupported security mode "{security}"',
                        (inst.flag("security") or inst).span, hint="use sandbox or insecure")
    if "device" in flags:
        raise ctx.error("DF-UNSUPPORTED", "RUN --device (Dockerfile labs) is not supported by "
                        "pybuild", (inst.flag("device") or inst).span,
                        hint="remove --device, or build this Dockerfile with BuildKit")
    mounts = [_mount(ctx, st, inst, v) for v in _list(flags, "mount")]
    cmd = inst.command
    if cmd.exec_form:
        argv: tuple[str, ...] = tuple(cmd.argv)
    else:
        args = [cmd.script]
        docs = inst.heredocs
        if docs:
            marker = _HEREDOC_ONLY.match(cmd.script.strip())
            if len(docs) == 1 and marker:
                doc = docs[0]
                if doc.content.startswith("#!"):
                    # A single heredoc with a shebang: mount it as an executable file and run it.
                    pipe = ctx.add(ImageSource(ref="scratch"), None)
                    script = ctx.add(Copy(root=pipe, source=None, sources=(doc.name,), dest="/",
                                          inline=(InlineFile(name=doc.name, content=doc.content),),
                                          chmod="755"), inst.span)
                    mounts.append(Mount(type="bind", target="/dev/pipes/", source=script,
                                        readonly=True))
                    args = ["/dev/pipes/" + doc.name]
                else:
                    args = [doc.content]
            else:
                full = cmd.script
                for doc in docs:
                    full += "\n" + doc.content + doc.name
                args = [full]
        argv = _shell_args(st, args)
    proxy = []
    for key in PROXY_ARGS:
        for name, value in ctx.build_args.items():
            if name.upper() == key:
                proxy += [f"{key}={value}", f"{key.lower()}={value}"]
                ctx.consumed.add(name)
    step = Exec(root=st.root, argv=argv, env=tuple(f"{k}={v}" for k, v in st.run_env.items()),
                cwd=st.working_dir or "/", user=st.user, network=network, security=security,
                mounts=tuple(mounts), proxy_env=tuple(proxy))
    st.root = ctx.add(step, inst.span)
    st.steps.append(st.root)
    st.commit(_run_history(st, argv), st.root, buildkit_suffix=True)


def _mount(ctx: PlanContext, st: StageState, inst: n.Instruction, value: object) -> Mount:
    flag = next((f for f in inst.flags if f.name == "mount" and f.value == value), None)
    span = flag.span if flag else inst.span
    try:
        m = parse_mount(str(value), lambda w: ctx.expand(w, st.run_env, inst))
    except MountProblem as p:
        raise ctx.error("DF-MOUNT", f"RUN --mount: {p}", span) from None
    if not m.target.startswith("/"):
        # Relative (or empty) mount targets are relative to the working directory, as
        # dispatchRunMounts joins them; a cache mount's default id is its target.
        m.target = posixpath.normpath(posixpath.join("/", st.working_dir or "/", m.target))
    if m.type == "cache" and not m.id:
        m.id = m.target
    source: StepId | None = None
    if m.type in ("bind", "cache") and m.from_:
        source = _from_source(ctx, st, inst, m.from_, span)
    elif m.type == "bind":
        path = m.source.lstrip("/")
        includes = (path,) if path and path != "." else ()
        source = ctx.add(ContextSource(includes=includes,
                                       excludes=tuple(ctx.options.dockerignore)), span)
    return Mount(type=m.type, target=m.target, source=source, path=m.source,
                 readonly=m.readonly, id=m.id, sharing=m.sharing or "shared", mode=m.mode,
                 uid=m.uid, gid=m.gid, required=m.required, size=m.size, env=m.env)


def _from_source(ctx: PlanContext, st: StageState, inst: n.Instruction, ref: str,
                 span: Span) -> StepId:
    """The filesystem a `--from`/`from=` names: an earlier stage's result or an image."""
    index = ctx.stage_ref(ref, st, inst, span)
    if index is not None:
        st.deps.add(index)
        return ctx.stages[index].root
    return ctx.add(ImageSource(ref=ref, platform=ctx.target_platform), None)


# ----------------------------------------------------------------------------- COPY / ADD


def _is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


_GIT_PREFIXES = ("git://", "git@", "ssh://")


def _git_ref(src: str) -> tuple[str, str, str] | None:
    """(remote, ref, subdir) when `src` is a git URL BuildKit would clone (gitutil.ParseGitRef:
    git://, ssh://, git@host:…, or http(s) ending in .git; a bare `github.com/x/y` is
    indistinguishable from a local path and stays local), else None."""
    if not (src.startswith(_GIT_PREFIXES) or (_is_url(src) and (
            src.split("#", 1)[0].endswith(".git")))):
        return None
    remote, _, fragment = src.partition("#")
    ref, _, subdir = fragment.partition(":")
    return remote, ref, subdir


def _url_filename(url: str) -> str:
    """BuildKit names a downloaded file `path.Base(url.Path)`, or `__unnamed__`; Go's
    `url.Path` is percent-decoded (`my%20file` → `my file`)."""
    path = unquote(urlsplit(url).path).rstrip("/")
    base = path.rsplit("/", 1)[-1] if path else ""
    return base if base not in ("", ".") else "__unnamed__"


def _copy_history(kind: str, flags: dict[str, object], sources: list[str], docs: list[str],
                  dest: str) -> str:
    parts = [kind]
    if flags.get("parents"):
        parts.append("--parents")
    if flags.get("chown"):
        parts.append(f"--chown={flags['chown']}")
    if flags.get("chmod"):
        parts.append(f"--chmod={flags['chmod']}")
    parts += sources
    parts += ["<<" + d for d in docs]
    parts.append(dest)
    return " ".join(parts)


_CHMOD = re.compile(r"^(?:[0-7]{3,4}|(?:[ugoa]*[-+=][rwxXst]*)(?:,[ugoa]*[-+=][rwxXst]*)*)$")


def convert_copy(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Copy | n.Add)
    is_add = isinstance(inst, n.Add)
    kind = "ADD" if is_add else "COPY"
    flags = flags_of(ctx, inst)
    for key in ("chown", "chmod", "checksum"):
        if key in flags:
            flags[key] = ctx.expand(str(flags[key]), st.run_env, inst)
    if "from" in flags:
        # Stage references are resolved before any stage runs (for pruning), so --from sees the
        # global ARGs too; the stage's own values win.
        scope = {k: v or "" for k, v in ctx.meta_args.items()} | st.run_env
        flags["from"] = ctx.expand(str(flags["from"]), scope, inst)
    chmod = str(flags.get("chmod", ""))
    if chmod and not _CHMOD.match(chmod):
        raise ctx.error("DF-FLAG", f"{kind}: invalid --chmod value {chmod!r}",
                        (inst.flag("chmod") or inst).span, hint="use octal (0755) or u+x style")
    plain: list[str] = []
    docs: list[n.Heredoc] = []
    pending = list(inst.heredocs)
    markers = {_heredoc_marker(a) for a in inst.args} - {None}
    for raw in inst.sources:
        # The parser lists a heredoc source by its delimiter (`EOF`, or `<<EOF` as written);
        # it is one only when the instruction's arguments carry the `<<` marker for it.
        name = _heredoc_marker(raw) or raw
        doc = next((d for d in pending if d.name == name), None)
        if doc is not None and (raw.startswith("<<") or name in markers):
            pending.remove(doc)
            docs.append(doc)
        else:
            plain.append(ctx.expand(raw, st.run_env, inst))
    dest_raw = ctx.expand(inst.dest, st.run_env, inst)
    dest = resolve_dest(st.working_dir, dest_raw)
    checksum = str(flags.get("checksum", ""))
    if checksum:
        if len(plain) != 1 or not (_is_url(plain[0]) or _git_ref(plain[0])):
            raise ctx.error("DF-FLAG", "ADD: --checksum needs exactly one HTTP or git source",
                            (inst.flag("checksum") or inst).span)
        if not re.fullmatch(r"sha256:[0-9a-f]{64}|[0-9a-f]{40}", checksum):
            raise ctx.error("DF-FLAG", f"ADD: invalid --checksum {checksum!r}",
                            (inst.flag("checksum") or inst).span,
                            hint="expected sha256:<64 hex digits> (or a git commit)")
    excludes = tuple(ctx.expand(str(x), st.run_env, inst) for x in _list(flags, "exclude"))
    # Fields every Copy step of this instruction shares; each source kind fills in the rest.
    template = Copy(root=st.root, source=None, sources=(), dest=dest,
                    chown=str(flags.get("chown", "")), chmod=chmod,
                    link=bool(flags.get("link", False)), excludes=excludes,
                    parents=bool(flags.get("parents", False)), add=is_add)
    from_ref = str(flags.get("from", ""))
    local: list[str] = []
    for src in plain:
        git = _git_ref(src) if is_add else None
        if git or _is_url(src):
            if not is_add:
                raise ctx.error("DF-COPY-URL", f"COPY: source can't be a URL ({src})",
                                inst.span, hint="use ADD to download files")
            if git:
                remote, ref, subdir = git
                origin = ctx.add(GitSource(url=remote, ref=ref, subdir=subdir,
                                           keep_git_dir=bool(flags.get("keep-git-dir")),
                                           checksum=checksum), inst.span)
                sources: tuple[str, ...] = ("/",)
            else:
                fname = _url_filename(src)
                origin = ctx.add(HttpSource(url=src, checksum=checksum, filename=fname),
                                 inst.span)
                sources = (fname,)
            st.root = ctx.add(replace(template, root=st.root, source=origin, sources=sources,
                                      unpack=bool(flags.get("unpack", False))), inst.span)
            st.steps.append(st.root)
        else:
            local.append(src)
    if local:
        if from_ref:
            origin = _from_source(ctx, st, inst, from_ref, (inst.flag("from") or inst).span)
        else:
            includes = tuple(sorted({_include(s) for s in local})) if "" not in {
                _include(s) for s in local} else ()
            origin = ctx.add(ContextSource(includes=includes,
                                           excludes=tuple(ctx.options.dockerignore)), inst.span)
        st.root = ctx.add(replace(template, root=st.root, source=origin, sources=tuple(local),
                                  unpack=bool(flags.get("unpack", True)) and is_add), inst.span)
        st.steps.append(st.root)
    if docs:
        inline = []
        for d in docs:
            content = d.content
            if d.expand:
                try:
                    content = ShellLexer("\\", skip_quotes=True).process(content,
                                                                         st.run_env).result
                except ExpansionError as err:
                    raise ctx.error("DF-EXPAND", err.message, inst.span) from None
            inline.append(InlineFile(name=d.name, content=content))
        st.root = ctx.add(replace(template, root=st.root, source=None,
                                  sources=tuple(d.name for d in docs), inline=tuple(inline)),
                          inst.span)
        st.steps.append(st.root)
    if not plain and not docs:
        raise ctx.error("DF-ARGS", f"{kind} requires at least one source", inst.span)
    st.commit(_copy_history(kind, flags, plain, [d.name for d in docs], dest_raw), st.root,
              buildkit_suffix=True)


def _heredoc_marker(arg: str) -> str | None:
    """`<<EOF`, `<<-EOF`, `<<"EOF"` → `EOF`; None for anything else."""
    if not arg.startswith("<<"):
        return None
    name = arg[2:].lstrip("-")
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = name[1:-1]
    return name or None


def _include(src: str) -> str:
    """A COPY source as a context include path ("" = the whole context)."""
    cleaned = _clean("/" + src).lstrip("/")
    return "" if cleaned in ("", ".") else cleaned


# ----------------------------------------------------------------------------- WORKDIR / USER


def convert_workdir(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Workdir)
    _no_flags(ctx, inst)
    path = ctx.expand(inst.path, st.run_env, inst)
    if not st.workdir_set and path and not path.startswith("/"):
        ctx.warn("WorkdirRelativePath", f"Relative workdir {gocompat.quote(path)} can have "
                 "unexpected results if the base image changes", inst,
                 "make the first WORKDIR of the stage absolute", "workdir-relative-path")
    st.workdir_set = True
    if not path:
        raise ctx.error("DF-ARGS", f"WORKDIR path {inst.path!r} is empty after variable "
                        "expansion", inst.span, hint="give the variable a value (ARG/ENV)")
    wd = normalize_workdir(st.working_dir, path)
    st.working_dir = wd
    step = None
    if wd != "/":
        step = ctx.add(Mkdir(root=st.root, path=wd, user=st.user), inst.span)
        st.root = step
        st.steps.append(step)
    st.commit("WORKDIR " + wd, step)


def convert_user(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.User)
    _no_flags(ctx, inst)
    st.user = ctx.expand(inst.user, st.run_env, inst)
    st.commit(f"USER {st.user}")


# ----------------------------------------------------------------------------- config-only


def convert_cmd(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Cmd)
    _no_flags(ctx, inst)
    c = inst.command
    args = tuple(c.argv) if c.exec_form else _shell_args(st, [c.script])
    st.cmd = args
    st.cmd_set = True
    st.args_escaped = True
    st.commit(f"CMD {gocompat.quote_list(args)}")


def convert_entrypoint(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    """ENTRYPOINT; an inherited CMD is reset unless this stage set CMD before it."""
    assert isinstance(inst, n.Entrypoint)
    _no_flags(ctx, inst)
    c = inst.command
    args: tuple[str, ...] | None
    args = tuple(c.argv) if c.exec_form else _shell_args(st, [c.script])
    if c.exec_form and not args:
        args = None  # ENTRYPOINT [] clears it
    st.entrypoint = args
    if not st.cmd_set:
        st.cmd = None
    st.commit(f"ENTRYPOINT {gocompat.quote_list(args)}")


def convert_shell(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Shell)
    _no_flags(ctx, inst)
    if not inst.json:
        raise ctx.error("DF-JSON", "SHELL requires the arguments to be in JSON form",
                        inst.span, hint='write it as SHELL ["/bin/bash", "-c"]')
    if not inst.argv:
        raise ctx.error("DF-ARGS", "SHELL requires at least one argument", inst.span)
    st.shell = tuple(inst.argv)
    st.commit(f"SHELL {gocompat.plain_list(list(inst.argv))}")


def convert_expose(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Expose)
    _no_flags(ctx, inst)
    words: list[str] = []
    for p in sorted(inst.ports):
        words += ctx.expand_words(p, st.run_env, inst)
    try:
        ports = gocompat.parse_port_specs(words)
    except ValueError as err:
        raise ctx.error("DF-EXPOSE", f"EXPOSE: {err}", inst.span,
                        hint="use PORT, PORT/PROTO or START-END/PROTO (tcp, udp, sctp)") from None
    for p in ports:
        st.exposed[p] = None
    st.commit(f"EXPOSE {gocompat.map_keys(ports)}")


def convert_volume(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Volume)
    _no_flags(ctx, inst)
    paths = []
    for raw in inst.paths:
        v = ctx.expand(raw, st.run_env, inst).strip()
        if not v:
            raise ctx.error("DF-ARGS", "VOLUME specified can not be an empty string", inst.span)
        paths.append(v)
        st.volumes[v] = None
    st.commit(f"VOLUME {gocompat.plain_list(paths)}")


def convert_stopsignal(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Stopsignal)
    _no_flags(ctx, inst)
    sig = ctx.expand(inst.signal, st.run_env, inst)
    try:
        gocompat.parse_signal(sig)
    except ValueError as err:
        raise ctx.error("DF-SIGNAL", str(err), inst.span,
                        hint="use a name like SIGTERM or a positive number") from None
    st.stop_signal = sig
    st.commit(f"STOPSIGNAL {sig}")


_MIN_DURATION = 1_000_000  # container.MinimumDuration: 1ms


def convert_healthcheck(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Healthcheck)
    if inst.command is None:
        # BuildKit never parses the flags of HEALTHCHECK NONE: they are ignored.
        health = HealthConfig(test=("NONE",))
    else:
        flags = flags_of(ctx, inst)
        durations = {}
        for name in ("interval", "timeout", "start-period", "start-interval"):
            text = str(flags.get(name, ""))
            if not text:
                durations[name] = 0
                continue
            span = (inst.flag(name) or inst).span
            try:
                value = gocompat.parse_duration(text)
            except ValueError as err:
                raise ctx.error("DF-FLAG", f"HEALTHCHECK --{name}: {err}", span,
                                hint="use a Go duration such as 30s, 1m30s or 500ms") from None
            # 0 means "use the default" (BuildKit's parseOptInterval); only 0 < d < 1ms fails.
            if value != 0 and value < _MIN_DURATION:
                raise ctx.error("DF-FLAG", f'Interval "{name}" cannot be less than 1ms', span)
            durations[name] = value
        retries = 0
        if flags.get("retries"):
            span = (inst.flag("retries") or inst).span
            try:
                retries = gocompat.parse_int(str(flags["retries"]), 32)  # as BuildKit
            except ValueError:
                raise ctx.error("DF-FLAG", f"HEALTHCHECK --retries: invalid number "
                                f"{flags['retries']!r}", span) from None
            # BuildKit accepts 0 (the daemon then applies its default of 3); the legacy
            # builder's "must be at least 1" is gone (instructions/parse.go parseHealthcheck).
            if retries < 0:
                raise ctx.error("DF-FLAG", f"--retries cannot be negative ({retries})", span)
        c = inst.command
        if c.exec_form:
            if not c.argv:
                raise ctx.error("DF-ARGS", "Missing command after HEALTHCHECK CMD", inst.span)
            test = ("CMD", *c.argv)
        else:
            if not c.script.strip():
                raise ctx.error("DF-ARGS", "Missing command after HEALTHCHECK CMD", inst.span)
            test = ("CMD-SHELL", c.script)
        health = HealthConfig(test=test, interval=durations["interval"],
                              timeout=durations["timeout"],
                              start_period=durations["start-period"],
                              start_interval=durations["start-interval"], retries=retries)
    st.healthcheck = health
    fields = " ".join(gocompat.quote(gocompat.format_duration(d)) for d in (
        health.interval, health.timeout, health.start_period, health.start_interval))
    st.commit(f"HEALTHCHECK &{{{gocompat.quote_list(health.test)} {fields} "
              f"{gocompat.quote_rune(health.retries)}}}")


_ONBUILD_PREFIX = re.compile(r"(?i)^\s*ONBUILD\s*")


def convert_onbuild(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    """ONBUILD is recorded verbatim into the config's OnBuild (no history entry, as BuildKit)."""
    assert isinstance(inst, n.Onbuild)
    _no_flags(ctx, inst)
    inner = inst.inner.keyword
    if inner == "ONBUILD":
        raise ctx.error("DF-ONBUILD", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                        inst.inner.span)
    if inner in ("FROM", "MAINTAINER"):
        raise ctx.error("DF-ONBUILD", f"{inner} isn't allowed as an ONBUILD trigger",
                        inst.inner.span)
    st.on_build.append(_ONBUILD_PREFIX.sub("", inst.original, count=1))


def convert_maintainer(ctx: PlanContext, st: StageState, inst: n.Instruction) -> None:
    assert isinstance(inst, n.Maintainer)
    _no_flags(ctx, inst)
    st.author = inst.name
    st.commit(f"MAINTAINER {inst.name}")


CONVERTERS: dict[type[n.Instruction], Converter] = {
    n.Env: convert_env,
    n.Label: convert_label,
    n.Arg: convert_arg,
    n.Run: convert_run,
    n.Copy: convert_copy,
    n.Add: convert_copy,
    n.Workdir: convert_workdir,
    n.User: convert_user,
    n.Cmd: convert_cmd,
    n.Entrypoint: convert_entrypoint,
    n.Shell: convert_shell,
    n.Expose: convert_expose,
    n.Volume: convert_volume,
    n.Stopsignal: convert_stopsignal,
    n.Healthcheck: convert_healthcheck,
    n.Onbuild: convert_onbuild,
    n.Maintainer: convert_maintainer,
}
