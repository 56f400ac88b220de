"""Which rung of the sandbox ladder (DESIGN.md §5) this machine allows, and why: `detect()`.

Each rung is probed for real (a forked child tries the namespaces and an overlay mount on a
throw-away tmpfs) rather than guessed from kernel versions; the result is cached per process.
"""

from __future__ import annotations

import enum
import functools
import os
import pwd
import shutil
from dataclasses import dataclass

from builder.sandbox import linux


class Mode(enum.StrEnum):
    """Rungs of the ladder, best first."""

    ROOT = "root"  # (1) real root with CAP_SYS_ADMIN
    ROOTLESS_SUBID = "rootless-subid"  # (2) user namespace with a subuid/subgid range
    ROOTLESS_SINGLE = "rootless-single-id"  # (3) user namespace mapping only our id to 0
    NONE = "none"  # (5) no namespaces: RUN is refused


class Filesystem(enum.StrEnum):
    """How the step's rootfs is assembled and its changes captured."""

    OVERLAY = "overlayfs"
    OVERLAY_USERXATTR = "overlayfs-userxattr"
    FUSE_OVERLAYFS = "fuse-overlayfs"
    COPY = "copy"  # (4) copy the lowers, diff the trees afterwards
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Check:
    """One probe and its outcome, as `pybuild info` shows it."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ModeReport:
    """The detected mode, the filesystem strategy, every check made, and (for NONE) the fix."""

    mode: Mode
    filesystem: Filesystem
    checks: tuple[Check, ...]
    reason: str
    fix: str | None = None
    supported: bool = True  # False when the mode is detected but the runner lacks it

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode.value,
            "filesystem": self.filesystem.value,
            "supported": self.supported,
            "reason": self.reason,
            "fix": self.fix,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


CAP_SYS_ADMIN = 21

NO_USERNS_FIX = (
    "Unprivileged user namespaces are blocked. On Ubuntu 23.10+/24.04 (GitHub Actions "
    "ubuntu-24.04 runners) run `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; "
    "elsewhere check `sysctl user.max_user_namespaces` (must be > 0) and "
    "`kernel.unprivileged_userns_clone=1` (Debian < 11). Inside a CI container run it with "
    "`--security-opt seccomp=unconfined --security-opt apparmor=unconfined` (or "
    "`--privileged`), or on Kubernetes set `securityContext.seccompProfile.type: Unconfined` "
    "(see docs/sandbox.md)."
)


def _cap_eff() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def _probe(fn: object) -> tuple[bool, str]:
    """Run `fn` in a forked child; (True, "") if it returned, else (False, error text)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into the caller's stack
        code = 0
        try:
            os.close(r)
            fn()  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            os.write(w, str(exc).encode()[:4000])
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0, msg


def _try_overlay(extra: str) -> None:
    """In a private mount namespace: tmpfs + an overlay over it (raises on failure)."""
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    base = "/tmp"
    linux.mount("tmpfs", base, "tmpfs", 0, "mode=700")
    for d in ("l", "u", "w", "m"):
        os.mkdir(f"{base}/{d}")
    linux.mount("overlay", f"{base}/m", "overlay", 0,
                f"lowerdir={base}/l,upperdir={base}/u,workdir={base}/w{extra}")


def _root_probe(overlay: bool) -> None:
    linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWUTS
                  | linux.CLONE_NEWIPC | linux.CLONE_NEWNET)
    if overlay:
        _try_overlay("")


def _userns_probe(overlay: bool) -> None:
    uid, gid = os.getuid(), os.getgid()
    linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS | linux.CLONE_NEWPID
                  | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWNET)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")
    if overlay:
        _try_overlay(",userxattr")
    else:
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)


def subid_range(kind: str, user: str, uid: int) -> tuple[int, int] | None:
    """The first (start, count) range for `user` in /etc/subuid or /etc/subgid, if any."""
    try:
        with open(f"/etc/{kind}") as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in (user, str(uid)) and int(parts[2]) > 0:
                    return int(parts[1]), int(parts[2])
    except (OSError, ValueError):
        return None
    return None


MODE_ENV = "PYBUILD_SANDBOX_MODE"
FS_ENV = "PYBUILD_SANDBOX_FS"
_ORDER = [Mode.ROOT, Mode.ROOTLESS_SUBID, Mode.ROOTLESS_SINGLE, Mode.NONE]
_FS_ORDER = [Filesystem.OVERLAY, Filesystem.OVERLAY_USERXATTR, Filesystem.FUSE_OVERLAYFS,
             Filesystem.COPY]


def detect() -> ModeReport:
    """Probe the ladder best-first and report the first rung that works (cached per process).

    Two environment variables step DOWN the ladder, e.g. to reproduce a CI setup locally:
    PYBUILD_SANDBOX_MODE (rootless-subid, rootless-single-id, none; as a regular user) and
    PYBUILD_SANDBOX_FS (fuse-overlayfs, copy). Asking for more than the machine allows is
    reported in the reason, not obeyed."""
    report = _detect()
    wanted = os.environ.get(MODE_ENV)
    if wanted and wanted != report.mode.value:
        report = _step_mode(report, wanted)
    wanted_fs = os.environ.get(FS_ENV)
    if wanted_fs and report.mode is not Mode.NONE and wanted_fs != report.filesystem.value:
        report = _step_fs(report, wanted_fs)
    return report


def _step_mode(report: ModeReport, wanted: str) -> ModeReport:
    try:
        want = Mode(wanted)
    except ValueError:
        return _with_note(report, f"ignored {MODE_ENV}={wanted!r}: not a mode")
    if want is not Mode.NONE and _ORDER.index(want) < _ORDER.index(report.mode):
        return _with_note(report, f"ignored {MODE_ENV}={wanted}: this machine only allows "
                                  f"{report.mode.value}")
    if want is Mode.NONE:
        return ModeReport(Mode.NONE, Filesystem.NONE, report.checks,
                          f"{MODE_ENV}=none: RUN steps are refused, COPY-only builds still work",
                          fix=f"unset {MODE_ENV} (this machine allows {report.mode.value})",
                          supported=False)
    if report.mode is Mode.ROOT:
        # Stepping down from root needs the rootless probes, which root skipped.
        return _with_note(report, f"ignored {MODE_ENV}={wanted}: run as a regular user")
    return ModeReport(want, report.filesystem, report.checks,
                      report.reason + f" ({MODE_ENV}={wanted})", report.fix, report.supported)


def _step_fs(report: ModeReport, wanted: str) -> ModeReport:
    try:
        want = Filesystem(wanted)
    except ValueError:
        return _with_note(report, f"ignored {FS_ENV}={wanted!r}: not a filesystem strategy")
    if want not in _FS_ORDER or _FS_ORDER.index(want) < _FS_ORDER.index(report.filesystem) \
            or (want is Filesystem.OVERLAY_USERXATTR and report.mode is Mode.ROOT):
        return _with_note(report, f"ignored {FS_ENV}={wanted}: not below "
                                  f"{report.filesystem.value}")
    if want is Filesystem.FUSE_OVERLAYFS and not _fuse_usable()[0]:
        return _with_note(report, f"ignored {FS_ENV}={wanted}: {_fuse_usable()[1]}")
    return ModeReport(report.mode, want, report.checks,
                      f"{report.reason}; stepped down to {wanted} by {FS_ENV}", report.fix,
                      report.supported)


def _with_note(report: ModeReport, note: str) -> ModeReport:
    return ModeReport(report.mode, report.filesystem, report.checks,
                      f"{report.reason}; {note}", report.fix, report.supported)


def _fuse_usable() -> tuple[bool, str]:
    exe = shutil.which("fuse-overlayfs")
    if not exe:
        return False, "fuse-overlayfs not installed (Debian package fuse-overlayfs)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return False, "/dev/fuse is missing or not read/writable by this user"
    return True, exe


@functools.lru_cache(maxsize=1)
def _detect() -> ModeReport:
    checks: list[Check] = []
    euid = os.geteuid()
    has_admin = bool(_cap_eff() & (1 << CAP_SYS_ADMIN))
    checks.append(Check("euid", True, str(euid)))
    checks.append(Check("CAP_SYS_ADMIN", has_admin, "in effective set" if has_admin else
                        "not in effective set"))
    fuse_ok, fuse_detail = _fuse_usable()
    if euid == 0 and has_admin:
        ok, err = _probe(lambda: _root_probe(False))
        checks.append(Check("mount/pid/uts/ipc/net namespaces as root", ok, err or "created"))
        if ok:
            ok_ovl, err_ovl = _probe(lambda: _root_probe(True))
            checks.append(Check("overlayfs", ok_ovl, err_ovl or "mounted"))
            if not ok_ovl:
                checks.append(Check("fuse-overlayfs", fuse_ok, fuse_detail))
            fs = (Filesystem.OVERLAY if ok_ovl else
                  Filesystem.FUSE_OVERLAYFS if fuse_ok else Filesystem.COPY)
            return ModeReport(Mode.ROOT, fs, tuple(checks),
                              "running as root with CAP_SYS_ADMIN: mount/pid/uts/ipc/net "
                              f"namespaces work; filesystem: {fs.value}")
    ok, err = _probe(lambda: _userns_probe(False))
    checks.append(Check("unprivileged user namespace", ok, err or "created"))
    if not ok:
        return ModeReport(Mode.NONE, Filesystem.NONE, tuple(checks),
                          f"cannot create a user namespace ({err}); RUN steps are refused, "
                          "COPY-only builds still work", fix=NO_USERNS_FIX, supported=False)
    ok_ovl, err_ovl = _probe(lambda: _userns_probe(True))
    checks.append(Check("overlayfs with userxattr in a user namespace", ok_ovl,
                        err_ovl or "mounted"))
    checks.append(Check("fuse-overlayfs", fuse_ok, fuse_detail))
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    sub_u = subid_range("subuid", user, os.getuid())
    sub_g = subid_range("subgid", user, os.getgid())
    helpers = shutil.which("newuidmap") and shutil.which("newgidmap")
    subid_ok = bool(sub_u and sub_g and helpers)
    checks.append(Check("subuid/subgid range + newuidmap/newgidmap", subid_ok,
                        f"subuid={sub_u} subgid={sub_g} helpers={'yes' if helpers else 'no'}"))
    fs = (Filesystem.OVERLAY_USERXATTR if ok_ovl else
          Filesystem.FUSE_OVERLAYFS if fuse_ok else Filesystem.COPY)
    mode = Mode.ROOTLESS_SUBID if subid_ok else Mode.ROOTLESS_SINGLE
    why = (f"rootless ({user}): user namespaces work; "
           + ("a subuid/subgid range maps 65536 ids" if subid_ok else
              "no subuid/subgid range, so only our own id is mapped (to 0)")
           + f"; filesystem: {fs.value}")
    return ModeReport(mode, fs, tuple(checks), why)
