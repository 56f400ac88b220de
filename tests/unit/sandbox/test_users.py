"""USER resolution against /etc/passwd and /etc/group text (runc's rules)."""

from __future__ import annotations

import pytest

from builder.sandbox.users import ExecUser, UserNotFound, resolve

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001::::
"""
GROUP = """root:x:0:
daemon:x:1:
app:x:1000:
wheel:x:10:app,root
audio:x:29:app
other:x:2000:
"""


@pytest.mark.parametrize("user,expected", [
    ("", ExecUser(0, 0, (0, 10), "/root")),
    ("root", ExecUser(0, 0, (0, 10), "/root")),
    ("app", ExecUser(1000, 1000, (1000, 10, 29), "/home/app")),
    ("1000", ExecUser(1000, 1000, (1000, 10, 29), "/home/app")),
    ("app:other", ExecUser(1000, 2000, (2000,), "/home/app")),  # explicit group drops /etc/group
    ("app:2001", ExecUser(1000, 2001, (2001,), "/home/app")),
    ("1000:1", ExecUser(1000, 1, (1,), "/home/app")),
    ("4242", ExecUser(4242, 0, (0,), "/")),  # unknown numeric uid: gid 0, HOME /
    ("4242:4243", ExecUser(4242, 4243, (4243,), "/")),
    ("nohome", ExecUser(1001, 1001, (1001,), "/")),
])
def test_resolve(user: str, expected: ExecUser) -> None:
    assert resolve(user, PASSWD, GROUP) == expected


def test_extra_groups_are_added_by_name_or_id() -> None:
    assert resolve("daemon", PASSWD, GROUP, ("other", "77", "other")).groups == (1, 2000, 77)


@pytest.mark.parametrize("user,needle", [
    ("nobody", "unable to find user nobody"),
    ("app:nogroup", "unable to find group nogroup"),
])
def test_unknown_names_are_errors(user: str, needle: str) -> None:
    with pytest.raises(UserNotFound, match=needle):
        resolve(user, PASSWD, GROUP)


def test_empty_files_allow_numeric_ids_only() -> None:
    assert resolve("0", "", "") == ExecUser(0, 0, (0,), "/")
    with pytest.raises(UserNotFound):
        resolve("root", "", "")
