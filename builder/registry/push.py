"""`push`: upload a stored image to a registry, in the layer compression `save` would write.

The manifest pushed is `builder.oci.image.convert_manifest(store, digest, compression)` —
the very function `pybuild save -o oci-archive` and OCI outputs use — so the digest a registry
reports equals the one in an OCI archive saved with the same compression (gzip by default, for
every client's sake). For each blob (config, layers): ``HEAD``; when missing, ``POST`` an upload
and ``PUT`` it whole with ``?digest=`` (the registry verifies it) — or, when another image of
the store is named on the same registry and has the blob, ask the registry to mount it from
that repository first (distribution spec "Mounting a blob from another repository"). The
manifest goes last,
under the tag, so a reader never sees a manifest whose blobs are not there yet.

An image stored as an index (a multi-platform pull) is pushed as the manifest for this
machine's platform, as `save` writes it.
"""

from __future__ import annotations

from collections.abc import Mapping

from builder import events
from builder.digest import Digest
from builder.errors import ImageError
from builder.oci.image import convert_manifest, get_image, read_document
from builder.oci.model import Compression, Descriptor, Index, Manifest
from builder.oci.reference import ImageRef, Transport, parse_name
from builder.registry.transfers import run_all
from builder.registry.transport import Client
from builder.store import Store

PUSH_JOBS = 4


def push_blob(store: Store, client: Client, desc: Descriptor,
              mount_from: str | None = None) -> str:
    """Upload one stored blob unless the repository has it (or it can be mounted from
    `mount_from`); returns what happened: "exists", "mounted" or "pushed"."""
    if client.has_blob(desc.digest):
        return "exists"
    size = store.blob_size(desc.digest)
    mounted = client.upload_blob(desc.digest, size, lambda: store.open_blob(desc.digest),  # type: ignore[arg-type,return-value]
                                 mount_from)
    return "mounted" if mounted else "pushed"


def known_sources(store: Store, dest: ImageRef) -> dict[Digest, str]:
    """Blobs of stored images named on `dest`'s registry (other repositories): digest →
    repository. Those were most likely pulled from (or pushed to) there, so a push can ask
    the registry to mount them instead of uploading them again (a wrong guess costs nothing:
    the registry then opens an ordinary upload)."""
    out: dict[Digest, str] = {}
    for name, digest in sorted(store.images().items()):
        try:
            ref = parse_name(name)
        except ValueError:
            continue
        if ref.domain != dest.domain or ref.path == dest.path:
            continue
        todo = [digest]
        while todo:
            d = todo.pop()
            try:
                doc = read_document(store, d) if store.has_blob(d) else None
            except ImageError:
                doc = None
            if isinstance(doc, Index):
                todo += [m.digest for m in doc.manifests]
            elif isinstance(doc, Manifest):
                for b in (doc.config, *doc.layers):
                    out.setdefault(b.digest, ref.path)
    return out


def push(store: Store, manifest_digest: Digest, dest: ImageRef, *,
         compression: Compression = Compression.GZIP,
         environ: Mapping[str, str] | None = None, sink: events.Sink = events.discard,
         jobs: int = PUSH_JOBS) -> Descriptor:
    """Push the stored image `manifest_digest` (a manifest or an index) to `dest` (a registry
    name with a tag, or with the digest the pushed manifest will have). Returns the pushed
    manifest's descriptor."""
    if dest.transport is not Transport.NAME:
        raise ImageError(f"{dest} is not a registry image name")
    desc = convert_manifest(store, manifest_digest, compression)
    img = get_image(store, desc.digest)
    if dest.digest is not None and not dest.tag and dest.digest != desc.digest:
        raise ImageError(f"cannot push to {dest.familiar}: the image's manifest is "
                         f"{desc.digest}", hint="push to a tag instead")
    blobs = list({b.digest: b for b in (img.manifest.config, *img.manifest.layers)}.values())
    sources = known_sources(store, dest)
    mounts = {b.digest: sources[b.digest] for b in blobs if b.digest in sources}
    client = Client(dest.domain, dest.path, push=True,
                    mount_sources=tuple(sorted(set(mounts.values()))), environ=environ)
    sink(events.Message(f"pushing {dest.familiar} to {client.host}"))
    run_all(jobs, lambda b: push_blob(store, client, b, mounts.get(b.digest)), blobs,
            lambda b, how: sink(events.Message(f"{how} {b.digest.short} ({b.size} bytes)")))
    client.put_manifest(dest.tag or str(desc.digest), desc.media_type, img.manifest_bytes)
    sink(events.Message(f"pushed {dest.familiar}: {desc.digest}"))
    return desc
