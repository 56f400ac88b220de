"""`pull`: fetch an image from a registry into the store, every byte verified.

Tag → manifest or index. For an index, one manifest is chosen for the wanted platform
(containerd's matcher: same os and architecture, the same variant — arm64 "" ≡ "v8",
amd64 "" ≡ "v1" — preferred over an entry without one). The config and the layers are
streamed into the store (skipping blobs already there), each checked against its digest and
size; a blob that does not match is refused and never becomes visible. Each layer is
decompressed once in its download worker to check it against the config's diff_id and record
it (the loader's `store_layer_blob`), so layers decompress in parallel. Then the manifest is
stored and — for an index — the index too, with its original bytes: the name points at what
the registry serves for the tag (so a later pull or push of the same name sees the same
digest); builder.oci.image resolves it to the stored platform's manifest. The name is set
last, so a failed pull leaves no name behind.
"""

from __future__ import annotations

from collections.abc import Mapping

from builder import events
from builder.digest import Digest
from builder.errors import ImageError, RegistryError
from builder.oci.layers import store_layer_blob
from builder.oci.layout import record_image
from builder.oci.model import (
    DOCKER_LAYER_FOREIGN,
    INDEX_TYPES,
    MANIFEST_TYPES,
    Compression,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    parse_document,
)
from builder.oci.reference import ImageRef, Transport
from builder.registry.transfers import run_all
from builder.registry.transport import Client, ManifestData
from builder.store import Store

PULL_JOBS = 4            # parallel blob downloads: enough to fill a link, few enough for a CDN
_NESTING = 4
_CHUNK = 1 << 20


def _norm_variant(p: Platform) -> str:
    if p.architecture == "arm64" and p.variant in ("", "v8"):
        return "v8"
    if p.architecture == "amd64" and p.variant in ("", "v1"):
        return "v1"
    return p.variant


def select_manifest(index: Index, want: Platform) -> Descriptor | None:
    """The index entry for `want`: an exact os/architecture/variant match first, then the
    same os/architecture without a variant, then an entry that names no platform."""
    entries = [m for m in index.manifests if m.media_type in MANIFEST_TYPES | INDEX_TYPES
               or not m.media_type]
    exact = [m for m in entries if m.platform is not None and m.platform.os == want.os
             and m.platform.architecture == want.architecture
             and _norm_variant(m.platform) == _norm_variant(want)]
    loose = [m for m in entries if m.platform is not None and m.platform.os == want.os
             and m.platform.architecture == want.architecture and not m.platform.variant]
    bare = [m for m in entries if m.platform is None]
    for group in (exact, loose, bare):
        if group:
            return group[0]
    return None


def _reference(ref: ImageRef) -> str:
    return str(ref.digest) if ref.digest is not None else ref.tag


def _parse(client: Client, doc: ManifestData, what: str) -> Manifest | Index:
    try:
        return parse_document(doc.data)
    except ValueError as e:
        raise RegistryError(f"registry {client.host}: {what} {client.where}: {e}",
                            hint="the registry served something that is not an OCI or "
                            "Docker schema 2 manifest (schema 1 images are not supported)"
                            ) from None


def _check_distributable(client: Client, ref: ImageRef, manifest: Manifest) -> None:
    for i, layer in enumerate(manifest.layers):
        if "nondistributable" in layer.media_type or layer.media_type == DOCKER_LAYER_FOREIGN \
                or layer.urls:
            raise RegistryError(
                f"registry {client.host}: {ref.familiar}: layer {i} ({layer.digest.short}) is a "
                f"foreign (non-distributable) layer ({layer.media_type}), which pybuild does "
                "not fetch", hint="use an image without foreign layers (Windows base images "
                "have them)")
        try:
            Compression.of_media_type(layer.media_type)
        except ValueError:
            raise RegistryError(f"registry {client.host}: {ref.familiar}: layer {i} has media "
                                f"type {layer.media_type!r}, which is not an image layer",
                                hint="this is not a container image (an artifact?)") from None


def fetch_blob(store: Store, client: Client, desc: Descriptor) -> None:
    """Stream one blob into the store, verified against its digest and size (skipped when
    already stored). A mismatch is a RegistryError; the temp file is discarded."""
    if store.has_blob(desc.digest):
        return
    what = f"get blob {desc.digest.short} of"
    with client.open_blob(desc.digest) as resp:
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != desc.size:
            raise client.error(what, f"the registry sends {length} bytes, the manifest says "
                                f"{desc.size}", hint="the registry or the manifest is corrupt")
        try:
            with store.blob_writer(desc.digest, desc.size) as w:
                while block := resp.read(_CHUNK):
                    w.write(block)
                if w.size < desc.size:   # http.client ends a short body quietly
                    raise client.error(what, f"connection lost after {w.size} of "
                                        f"{desc.size} bytes", hint="try again")
                w.commit()
        except ImageError as e:
            raise client.error(what, e.message, hint="the registry served bytes that do not "
                                "match the digest; nothing was stored") from None


def fetch_layer(store: Store, client: Client, desc: Descriptor, diff_id: Digest) -> None:
    """Fetch a layer blob, then decompress it once to record it by diff_id (the shared
    `store_layer_blob`), in the download worker: layers are then decompressed in parallel
    and while others download. A layer whose tar does not hash to `diff_id` (the config's)
    is refused here, before any manifest is stored; `record_image` then finds the records
    made, as for a loaded image."""
    fetch_blob(store, client, desc)
    rec = store.get_layer(diff_id)
    comp = Compression.of_media_type(desc.media_type)
    if rec is not None and comp in rec.variants and rec.variants[comp].digest == desc.digest:
        return
    what = f"get blob {desc.digest.short} of"
    try:
        got = store_layer_blob(store, desc.digest, desc.media_type)
    except ImageError as e:
        raise client.error(what, e.message, hint="the registry serves a layer that is not a "
                           "valid compressed tar") from None
    if got.diff_id != diff_id:
        raise client.error(what, f"layer {desc.digest} decompresses to {got.diff_id}, but the "
                           f"image config says {diff_id}",
                           hint="the image is corrupt or was tampered with; nothing was named")


def pull(store: Store, ref: ImageRef, platform: Platform | None = None, *,
         environ: Mapping[str, str] | None = None, sink: events.Sink = events.discard,
         jobs: int = PULL_JOBS) -> Digest:
    """Pull `ref` (a registry name) for `platform` (default: this machine's) into `store` and
    name it `ref.name`. Returns the digest the name now points to: the registry's manifest,
    or its index when it serves one (builder.oci.image.get_image resolves either)."""
    if ref.transport is not Transport.NAME:
        raise ImageError(f"{ref} is not a registry image name")
    want = platform or Platform.host()
    client = Client(ref.domain, ref.path, environ=environ)
    sink(events.Message(f"pulling {ref.familiar} from {client.host}"))
    top = client.get_manifest(_reference(ref))
    docs = [top]
    doc = _parse(client, top, f"manifest {_reference(ref)} of")
    for _ in range(_NESTING):
        if isinstance(doc, Manifest):
            break
        chosen = select_manifest(doc, want)
        if chosen is None:
            plats = ", ".join(sorted(str(m.platform) for m in doc.manifests if m.platform))
            raise RegistryError(f"registry {client.host}: {ref.familiar} has no image for "
                                f"{want} (it has: {plats or 'none'})",
                                hint="pull it for one of those platforms (--platform)")
        child = client.get_manifest(str(chosen.digest))
        if len(child.data) != chosen.size:
            raise RegistryError(f"registry {client.host}: {ref.familiar}: manifest "
                                f"{chosen.digest} is {len(child.data)} bytes, the index says "
                                f"{chosen.size}")
        docs.append(child)
        doc = _parse(client, child, f"manifest {chosen.digest} of")
    if not isinstance(doc, Manifest):
        raise RegistryError(f"registry {client.host}: {ref.familiar}: indexes nest too deeply")
    manifest = doc
    _check_distributable(client, ref, manifest)
    fetch_blob(store, client, manifest.config)
    try:
        diff_ids = ImageConfig.from_bytes(store.read_blob(manifest.config.digest)).diff_ids
    except ValueError as e:
        raise client.error(f"get config {manifest.config.digest.short} of", str(e)) from None
    if len(diff_ids) != len(manifest.layers):
        raise client.error(f"get manifest {_reference(ref)} of", f"{len(manifest.layers)} "
                           f"layers but {len(diff_ids)} diff_ids in the image config",
                           hint="the image is corrupt")
    by_layer = dict(zip((b.digest for b in manifest.layers), diff_ids, strict=True))
    blobs = list({b.digest: b for b in manifest.layers}.values())
    run_all(jobs, lambda d: fetch_layer(store, client, d, by_layer[d.digest]), blobs,
            lambda d, _: sink(events.Message(f"pulled {d.digest.short} ({d.size} bytes)")))
    # Documents last, innermost first: the stored manifest's blobs are all there by now.
    for d in reversed(docs):
        store.put_blob(d.data, expected=d.digest)
    try:
        record_image(store, top.digest, f"{client.host}/{ref.path}")
    except ImageError as e:
        raise RegistryError(f"registry {client.host}: {ref.familiar}: {e.message}",
                            hint="the image's config does not match its layers") from None
    store.set_image(ref.name, top.digest)
    sink(events.Message(f"pulled {ref.familiar}: {top.digest}"))
    return top.digest
