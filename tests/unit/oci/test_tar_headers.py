"""Our ustar/pax header encoder, checked against two independent readers (tarfile, GNU tar)."""

from __future__ import annotations

import io
import tarfile

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.oci.layers import DIRTYPE, REGTYPE, SYMTYPE, _header

names = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"),
                                       blacklist_characters="/\0"), min_size=1, max_size=60)
paths = st.lists(names, min_size=1, max_size=5).map("/".join)
ids = st.one_of(st.integers(0, 70000), st.integers(0, 2**32 - 1))
xattr_values = st.binary(max_size=40)


@settings(max_examples=200, deadline=None)
@given(path=paths, link=paths, uid=ids, gid=ids, mtime=st.integers(0, 2**34),
       mode=st.integers(0, 0o7777), kind=st.sampled_from([REGTYPE, SYMTYPE, DIRTYPE]),
       xattr=st.one_of(st.none(), xattr_values), size=st.integers(0, 3000))
def test_headers_parse_back_exactly(path: str, link: str, uid: int, gid: int, mtime: int,
                                    mode: int, kind: bytes, xattr: bytes | None, size: int):
    data = b"x" * size if kind == REGTYPE else b""
    name = path + "/" if kind == DIRTYPE else path
    raw = _header(name, mode, uid, gid, len(data), mtime, kind,
                  link if kind == SYMTYPE else "",
                  xattrs={"user.k": xattr} if xattr is not None else None)
    assert len(raw) % 512 == 0
    raw += data + b"\0" * (-len(data) % 512) + b"\0" * 1024
    with tarfile.open(fileobj=io.BytesIO(raw), encoding="utf-8",
                      errors="surrogateescape") as tf:
        (m,) = tf.getmembers()
    assert m.name == path
    assert (m.uid, m.gid, m.mtime, m.mode, m.size) == (uid, gid, mtime, mode, len(data))
    assert m.uname == "" and m.gname == ""
    if kind == SYMTYPE:
        assert m.issym() and m.linkname == link
    if xattr is not None:
        assert m.pax_headers["SCHILY.xattr.user.k"].encode("utf-8", "surrogateescape") == xattr
