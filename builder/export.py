"""Build outputs (`--output`/`-o`, buildx syntax): an image in the store → OCI archive or
layout directory, docker-archive tarball, or the image's filesystem in a local directory.

Compression (`--compression gzip|zstd|none`) applies to OCI outputs: layers are converted
once and the result is remembered by the store (a second export of the same image does not
compress again); base-image layers already in that compression are written as they are.
Every output is written to a temporary name and renamed into place: never half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from builder.digest import Digest
from builder.errors import UsageError
from builder.oci.image import get_image
from builder.oci.layers import apply_layers
from builder.oci.layout import write_docker_archive, write_layout, write_oci_archive
from builder.oci.model import Compression, Descriptor
from builder.oci.reference import parse_name
from builder.store import Store

TYPES = ("oci", "docker", "local", "tar")


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """One `--output`: `type` oci|docker|local, `dest` a path, `tar` (oci only) False for a
    layout directory instead of an archive."""

    type: str
    dest: str
    tar: bool = True


def parse_output(text: str) -> OutputSpec:
    """Parse `type=oci,dest=PATH[,tar=false]` | `type=docker,dest=FILE` | `type=local,dest=DIR`
    (a bare PATH means `type=local,dest=PATH`, as buildx). Raises UsageError."""
    if "=" not in text:
        return OutputSpec("local", text)
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"--output {text!r}: {part!r} is not KEY=VALUE")
        fields[key.strip().lower()] = value.strip()
    kind = fields.pop("type", "local")
    if kind not in TYPES:
        raise UsageError(f"--output type={kind} is not supported",
                         hint="use type=oci, type=docker or type=local (push with "
                         "`pybuild push` once the image is tagged)")
    dest = fields.pop("dest", "")
    if not dest:
        raise UsageError(f"--output {text!r} needs dest=PATH")
    if dest == "-":
        raise UsageError("--output dest=- (standard output) is not supported yet")
    tar = fields.pop("tar", "true").lower() not in ("false", "0", "no")
    fields.pop("name", None)
    if fields:
        raise UsageError(f"--output: unknown field(s) {', '.join(sorted(fields))}")
    if kind == "tar":
        kind = "oci"
    return OutputSpec(kind, dest, tar)


def write(store: Store, manifest_digest: Digest, spec: OutputSpec, *,
          names: tuple[str, ...] = (),
          compression: Compression = Compression.GZIP) -> Descriptor | None:
    """Write one output. `names` are the normalised -t names (the first names the image in
    OCI annotations; all become docker RepoTags). Returns the manifest written (None for
    type=local)."""
    dest = Path(spec.dest)
    if dest.parent and not dest.parent.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
    name = names[0] if names else None
    tag = name.rpartition(":")[2] if name and ":" in name.rpartition("/")[2] else None
    if spec.type == "oci":
        if spec.tar:
            return write_oci_archive(store, dest, [(manifest_digest, name, tag)],
                                     compression=compression)[0]
        return write_layout(store, dest, manifest_digest, tag=tag, name=name,
                            compression=compression)
    if spec.type == "docker":
        familiar = [parse_name(n).familiar for n in names]
        write_docker_archive(store, dest, [(manifest_digest, familiar)])
        img = get_image(store, manifest_digest)
        return Descriptor(img.manifest.media_type, img.manifest_digest, len(img.manifest_bytes))
    # type=local: the image's filesystem, flattened
    img = get_image(store, manifest_digest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        apply_layers(store, list(img.config.diff_ids), tmp)
        if dest.exists():
            if dest.is_dir() and not any(dest.iterdir()):
                dest.rmdir()
            else:
                raise UsageError(f"--output type=local,dest={dest}: the directory exists and "
                                 "is not empty", hint="remove it or choose another path")
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return None
