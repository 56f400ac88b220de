"""Cross-checks with umoci (Debian): it unpacks what we write into the same tree our applier
makes, and what it writes (a repacked layer with a whiteout) we load and apply identically."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from builder.oci.image import get_image, import_rootfs
from builder.oci.layers import apply_layers
from builder.oci.layout import export, load_layout
from builder.oci.model import Compression
from builder.oci.reference import parse
from builder.store import Store
from tests.integration.oci_fixtures import busybox_rootfs, need, tree_listing

pytestmark = pytest.mark.integration
ROOTLESS = [] if os.geteuid() == 0 else ["--rootless"]


def umoci(*args: str) -> None:
    r = subprocess.run(["umoci", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("comp", [Compression.GZIP, Compression.NONE])
def test_umoci_unpack_equals_our_apply(tmp_path: Path, comp: Compression):
    need("umoci")
    store = Store(tmp_path / "store")
    desc = import_rootfs(store, busybox_rootfs(tmp_path / "src"))
    lay = tmp_path / "layout"
    export(store, desc.digest, parse(f"oci-layout://{lay}:t"), compression=comp)
    umoci("unpack", *ROOTLESS, "--image", f"{lay}:t", str(tmp_path / "bundle"))
    ours = tmp_path / "ours"
    ours.mkdir()
    apply_layers(store, get_image(store, desc.digest).config.diff_ids, ours)
    theirs = tree_listing(tmp_path / "bundle" / "rootfs")
    mine = tree_listing(ours)
    assert mine == theirs
    assert mine == tree_listing(tmp_path / "src")        # and both equal the source tree


def test_layers_umoci_writes_load_and_apply_the_same(tmp_path: Path):
    need("umoci")
    store = Store(tmp_path / "store")
    desc = import_rootfs(store, busybox_rootfs(tmp_path / "src"))
    lay = tmp_path / "layout"
    export(store, desc.digest, parse(f"oci-layout://{lay}:base"))
    bundle = tmp_path / "bundle"
    umoci("unpack", *ROOTLESS, "--image", f"{lay}:base", str(bundle))
    rootfs = bundle / "rootfs"
    (rootfs / "etc" / "hostname").unlink()               # → a .wh.hostname whiteout
    (rootfs / "etc" / "motd").write_text("hello from umoci\n")
    umoci("repack", "--image", f"{lay}:next", str(bundle))
    index = json.loads((lay / "index.json").read_text())
    next_digest = next(m["digest"] for m in index["manifests"]
                       if m["annotations"]["org.opencontainers.image.ref.name"] == "next")
    fresh = Store(tmp_path / "fresh")
    loaded = load_layout(fresh, lay, tag="next")
    assert str(loaded[0].manifest.digest) == next_digest
    img = get_image(fresh, loaded[0].manifest.digest)
    assert len(img.config.diff_ids) == 2
    ours = tmp_path / "ours"
    ours.mkdir()
    apply_layers(fresh, img.config.diff_ids, ours)
    mine, theirs = tree_listing(ours), tree_listing(rootfs)
    # umoci's tar headers round the new file's mtime to whole seconds (Go archive/tar, USTAR):
    # we apply what the layer says, so compare that entry without its mtime.
    for listing in (mine, theirs):
        listing["etc/motd"] = listing["etc/motd"][:4] + listing["etc/motd"][5:]
    assert mine == theirs
    assert not (ours / "etc" / "hostname").exists()
