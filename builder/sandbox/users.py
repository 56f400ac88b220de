"""Resolves a USER string (`name`, `uid`, `uid:gid`, `name:group`, ...) against a rootfs'
/etc/passwd and /etc/group text, with runc's rules (libcontainer/user.GetExecUser)."""

from __future__ import annotations

from dataclasses import dataclass


class UserNotFound(ValueError):
    """The user or group name does not exist in the rootfs (the message says which file)."""


@dataclass(frozen=True, slots=True)
class ExecUser:
    """The ids the command runs with, and the HOME it gets when the spec sets none."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _table(text: str, fields: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            rows.append(parts)
    return rows


def _id(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve(user: str, passwd: str, group: str, extra_groups: tuple[str, ...] = ()) -> ExecUser:
    """Resolve `user` ("" means root) to ids.

    Rules (runc / Docker): a numeric uid need not exist in passwd (gid then defaults to 0,
    HOME to "/"); a name must. An explicit group (name or gid) replaces the primary group AND
    drops the supplementary groups from /etc/group (Docker documents this); otherwise the user
    gets every group in /etc/group that lists it as a member. `extra_groups` (names or gids)
    are always added. The supplementary list starts with the primary gid, as in Docker.
    Raises UserNotFound."""
    user_part, _, group_part = (user or "0").partition(":")
    users = _table(passwd, 7)
    groups = _table(group, 4)
    uid = _id(user_part)
    entry = None
    for row in users:
        if (uid is None and row[0] == user_part) or (uid is not None and _id(row[2]) == uid):
            entry = row
            break
    if entry is None and uid is None:
        raise UserNotFound(
            f"unable to find user {user_part}: no matching entries in passwd file")
    name = entry[0] if entry else None
    uid = uid if uid is not None else int(entry[2])  # type: ignore[index]
    gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    home = entry[5] if entry and entry[5] else "/"

    def group_id(g: str) -> int:
        num = _id(g)
        if num is not None:
            return num
        for row in groups:
            if row[0] == g and row[2].isdigit():
                return int(row[2])
        raise UserNotFound(f"unable to find group {g}: no matching entries in group file")

    if group_part:
        gid = group_id(group_part)
    # Docker and BuildKit (containerd's WithAdditionalGIDs) list the primary group first.
    sgids: list[int] = [gid]
    if not group_part and name is not None:
        for row in groups:
            if name in row[3].split(",") and row[2].isdigit():
                sgids.append(int(row[2]))
    sgids += [group_id(extra) for extra in extra_groups]
    seen: list[int] = []
    for gid_ in sgids:
        if gid_ not in seen:
            seen.append(gid_)
    return ExecUser(uid, gid, tuple(seen), home)
