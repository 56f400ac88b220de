"""The planner's working state: one StageState per FROM (BuildKit's dispatchState) and the
PlanContext shared by all stages (steps, spans, global ARGs, errors with spans)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from builder.errors import Diagnostic, DockerfileError, Severity
from builder.frontend.expand import Expansion, ExpansionError, ShellLexer
from builder.frontend.options import PlanOptions
from builder.graph import (
    HealthConfig,
    HistoryEntry,
    ImageConfig,
    Platform,
    Step,
    StepId,
    step_id,
)
from builder.source import SourceText, Span
from builder.syntax.nodes import Dockerfile, From, Instruction

# system.DefaultPathEnv for Linux: BuildKit adds it when the base image has no PATH.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")
PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")


@dataclass
class StageState:
    """A stage being planned. `env` is the image config Env; `run_env` is what RUN and
    expansion see (image Env plus ARGs in scope, BuildKit's llb state env)."""

    index: int
    name: str | None
    node: From
    base: str
    base_stage: int | None
    platform: Platform
    root: StepId = StepId("")
    base_root: StepId | None = None
    env: dict[str, str] = field(default_factory=dict)
    run_env: dict[str, str] = field(default_factory=dict)
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    exposed: dict[str, None] = field(default_factory=dict)
    volumes: dict[str, None] = field(default_factory=dict)
    stop_signal: str = ""
    healthcheck: HealthConfig | None = None
    shell: tuple[str, ...] | None = None
    on_build: list[str] = field(default_factory=list)
    args_escaped: bool = False
    author: str = ""
    build_args: list[tuple[str, str | None]] = field(default_factory=list)
    steps: list[StepId] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    cmd_set: bool = False
    workdir_set: bool = False  # a WORKDIR ran in this stage or a base stage (not the image)
    deps: set[int] = field(default_factory=set)
    planned: bool = False

    @property
    def label(self) -> str:
        return self.name if self.name is not None else str(self.index)

    def load_config(self, config: ImageConfig) -> None:
        """Start from a base image's config (BuildKit: image config, then PATH default)."""
        self.env = config.env_map()
        self.cmd = config.cmd
        self.entrypoint = config.entrypoint
        self.working_dir = config.working_dir
        self.user = config.user
        self.labels = dict(config.labels)
        self.exposed = dict.fromkeys(config.exposed_ports)
        self.volumes = dict.fromkeys(config.volumes)
        self.stop_signal = config.stop_signal
        self.healthcheck = config.healthcheck
        self.shell = config.shell
        self.on_build = list(config.on_build)
        self.args_escaped = config.args_escaped

    def inherit(self, base: StageState) -> None:
        """Start from an earlier stage's final state (its image config and history)."""
        self.load_config(base.config())
        self.author = base.author
        self.root = base.root
        self.workdir_set = base.workdir_set
        self.history = list(base.history)
        self.platform = base.platform

    def set_env(self, key: str, value: str) -> None:
        """ENV: the image config keeps the key's position; the run env moves it last
        (BuildKit's addEnv vs llb EnvList.AddOrReplace)."""
        self.env[key] = value
        self.run_env.pop(key, None)
        self.run_env[key] = value

    def set_arg(self, key: str, value: str) -> None:
        self.run_env.pop(key, None)
        self.run_env[key] = value

    @property
    def active_shell(self) -> tuple[str, ...]:
        return self.shell if self.shell else DEFAULT_SHELL

    def config(self) -> ImageConfig:
        return ImageConfig(
            env=tuple(f"{k}={v}" for k, v in self.env.items()),
            cmd=self.cmd,
            entrypoint=self.entrypoint,
            working_dir=self.working_dir,
            user=self.user,
            labels=tuple(self.labels.items()),
            exposed_ports=tuple(self.exposed),
            volumes=tuple(self.volumes),
            stop_signal=self.stop_signal,
            healthcheck=self.healthcheck,
            shell=self.shell,
            on_build=tuple(self.on_build),
            args_escaped=self.args_escaped,
        )

    def commit(self, created_by: str, step: StepId | None = None, *,
               buildkit_suffix: bool = False) -> None:
        """Add a history entry (`# buildkit` is appended for RUN/COPY/ADD as BuildKit does)."""
        if buildkit_suffix:
            created_by += " # buildkit"
        self.history.append(HistoryEntry(created_by=created_by, empty_layer=step is None,
                                         step=step))


class PlanContext:
    """Everything shared while planning one Dockerfile."""

    def __init__(self, dockerfile: Dockerfile, options: PlanOptions) -> None:
        self.dockerfile = dockerfile
        self.options = options
        self.source = SourceText(dockerfile.path, dockerfile.text)
        self.lexer = ShellLexer(dockerfile.escape)
        self.steps: dict[StepId, Step] = {}
        self.spans: dict[StepId, Span] = {}
        self.stages: list[StageState] = []
        self.by_name: dict[str, int] = {}
        self.meta_args: dict[str, str | None] = {}
        self.build_args: dict[str, str] = {}
        self.consumed: set[str] = set()
        self.warnings: list[Diagnostic] = []
        self.target_platform = options.target_platform or options.build_platform
        self.dockerfile_stages: list[From] = []
        self.by_name_all: dict[str, int] = {}
        self.current: StageState | None = None  # the stage being dispatched
        self._reported: set[tuple[str, int, str]] = set()

    # -- errors -------------------------------------------------------------------------------

    def error(self, code: str, message: str, span: Span | None, *,
              hint: str | None = None) -> DockerfileError:
        line = self.source.line(span.line) if span and span.file == self.source.name else None
        return DockerfileError.at(code, message, span, hint=hint, line_text=line)

    # -- expansion ----------------------------------------------------------------------------

    def expand(self, word: str, env: dict[str, str], inst: Instruction | None) -> str:
        return self.process(word, env, inst, words=False).result

    def expand_words(self, text: str, env: dict[str, str], inst: Instruction) -> list[str]:
        return self.process(text, env, inst).words

    def process(self, word: str, env: dict[str, str], inst: Instruction | None, *,
                words: bool = True) -> Expansion:
        """Expand with the planner's lexer; errors at the instruction's span, and undefined
        names reported as UndefinedVar when `env` is the current stage's."""
        try:
            result = self.lexer.process(word, env, words=words)
        except ExpansionError as err:
            raise self.error("DF-EXPAND", err.message, inst.span if inst else None) from None
        st = self.current
        if result.unmatched and st is not None and env is st.run_env and inst is not None:
            declared = {key for key, _ in st.build_args}
            for name in result.unmatched:
                if name not in declared:
                    self.warn_undefined(name, inst, [*st.run_env, *self.meta_args])
        return result

    def warn(self, code: str, message: str, inst: Instruction, hint: str, slug: str) -> None:
        """Add a BuildKit build-check warning at `inst` (docs URL from the rule's slug)."""
        line = self.source.line(inst.span.line) if inst.span.file == self.source.name else None
        url = f"https://docs.docker.com/go/dockerfile/rule/{slug}/"
        self.warnings.append(Diagnostic(code, Severity.WARNING, message, inst.span, hint, url,
                                        line))

    def warn_undefined(self, name: str, inst: Instruction, known: list[str], *,
                       in_from: bool = False) -> None:
        """BuildKit's UndefinedVar / UndefinedArgInFrom build checks, once per line and name.
        Positional and special parameters (`$1`, `$@`) are left alone."""
        if not (name[:1].isalpha() or name[:1] == "_"):
            return
        key = (inst.span.file, inst.span.line, name)
        if key in self._reported:
            return
        self._reported.add(key)
        guess = difflib.get_close_matches(name, known, n=1)
        if in_from:
            code, message = "UndefinedArgInFrom", f"FROM argument '{name}' is not declared"
            url = "https://docs.docker.com/go/dockerfile/rule/undefined-arg-in-from/"
            hint = f"did you mean {guess[0]}?" if guess else (
                f"declare it with ARG {name} before the first FROM")
        else:
            code, message = "UndefinedVar", f"Usage of undefined variable '${name}'"
            url = "https://docs.docker.com/go/dockerfile/rule/undefined-var/"
            hint = f"did you mean ${guess[0]}?" if guess else (
                f"declare it with ARG {name} or ENV {name}=… first")
        line = self.source.line(inst.span.line) if inst.span.file == self.source.name else None
        self.warnings.append(Diagnostic(code, Severity.WARNING, message, inst.span, hint, url,
                                        line))

    # -- steps --------------------------------------------------------------------------------

    def add(self, step: Step, span: Span | None) -> StepId:
        """Record a step (idempotent: equal steps share one id) and remember its first span."""
        sid = step_id(step)
        if sid not in self.steps:
            self.steps[sid] = step
            if span is not None:
                self.spans[sid] = span
        return sid

    def stage_ref(self, ref: str, current: StageState, inst: Instruction,
                  span: Span | None) -> int | None:
        """Resolve `--from`/`from=` text to an earlier stage index, or None for an image.
        A name or index of the current or a later stage is an error (BuildKit: it needs to be
        defined before the current stage)."""
        if ref.isdigit():
            index = int(ref)
            if index >= len(self.dockerfile_stages):
                raise self.error("DF-STAGE-INDEX", f"invalid stage index {index}", span,
                                 hint=f"this Dockerfile has {len(self.dockerfile_stages)} "
                                 "stage(s), numbered from 0")
            found: int | None = index
        else:
            found = self.by_name_all.get(ref.lower())
        if found is None:
            return None
        if found >= current.index:
            raise self.error(
                "DF-STAGE-ORDER",
                f'cannot copy from stage "{ref}", it needs to be defined before current '
                f'stage "{current.label}"', span,
                hint="move that stage above this one")
        return found
