"""The OCI image data model (descriptors, manifests, indexes, image configs) and its canonical JSON.

Names follow the OCI image spec verbatim (https://github.com/opencontainers/image-spec).
We read both OCI and Docker schema 2 media types and write OCI by default.

Canonical JSON (`canonical_json`) is what makes an image reproducible: keys sorted, no
insignificant whitespace, UTF-8, so the same value always serialises to the same bytes.
Blobs we did *not* write (loaded or pulled) are kept as their original bytes by the store:
re-serialising a foreign manifest would change its digest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from builder.digest import Digest

_T = TypeVar("_T")

# --- media types -------------------------------------------------------------------------------
# https://github.com/opencontainers/image-spec/blob/main/media-types.md
OCI_LAYOUT_VERSION = "1.0.0"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
# https://distribution.github.io/distribution/spec/manifest-v2-2/
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})

# Annotation keys (https://github.com/opencontainers/image-spec/blob/main/annotations.md)
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"
# containerd and BuildKit put the full image name here in OCI layouts they write.
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"


class Compression(StrEnum):
    """How a layer blob is compressed. The value is the suffix used in media types."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"

    @property
    def oci_media_type(self) -> str:
        return {
            Compression.NONE: OCI_LAYER,
            Compression.GZIP: OCI_LAYER_GZIP,
            Compression.ZSTD: OCI_LAYER_ZSTD,
        }[self]

    @classmethod
    def of_media_type(cls, media_type: str) -> Compression:
        """The compression a layer media type implies (OCI or Docker); ValueError if not a layer."""
        if media_type in (OCI_LAYER, OCI_LAYER_NONDIST, DOCKER_LAYER):
            return cls.NONE
        if media_type in (OCI_LAYER_GZIP, OCI_LAYER_NONDIST_GZIP, DOCKER_LAYER_GZIP,
                          DOCKER_LAYER_FOREIGN):
            return cls.GZIP
        if media_type.endswith("+zstd") or media_type.endswith(".tar.zstd"):
            return cls.ZSTD
        raise ValueError(f"not a layer media type: {media_type}")


def canonical_json(value: Any) -> bytes:
    """Serialise JSON deterministically: sorted keys, compact separators, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    """OCI marks most fields OPTIONAL: omit empty ones rather than writing null/{}/[]."""
    return {k: v for k, v in d.items() if v not in (None, "", {}, [], ())}


@dataclass(frozen=True, slots=True)
class Platform:
    """os/architecture[/variant] (image-spec image-index.md, `platform`)."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""
    os_version: str = ""

    def to_json(self) -> dict[str, Any]:
        return _drop_empty({"os": self.os, "architecture": self.architecture,
                            "variant": self.variant, "os.version": self.os_version})

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Platform:
        """Parse a platform object; ValueError when it is not an object of strings."""
        if not isinstance(d, Mapping):
            raise ValueError("platform is not a JSON object")
        fields = (d.get("os", ""), d.get("architecture", ""), d.get("variant", "") or "",
                  d.get("os.version", "") or "")
        if not all(isinstance(f, str) for f in fields):
            raise ValueError("platform fields are not strings")
        return cls(*fields)

    @classmethod
    def host(cls) -> Platform:
        """The platform of this machine, in GOARCH spelling."""
        import platform as _p

        machine = _p.machine().lower()
        arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
                "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)
        return cls("linux", arch, "v7" if machine == "armv7l" else "")

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A typed, sized, digested reference to a blob (image-spec descriptor.md)."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest),
                             "size": self.size}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform is not None:
            d["platform"] = self.platform.to_json()
        if self.urls:
            d["urls"] = list(self.urls)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Descriptor:
        """Parse a descriptor; raises ValueError (with the field) when malformed."""
        try:
            size = int(d["size"])
            if size < 0:
                raise ValueError("negative size")
            plat = d.get("platform")
            return cls(str(d["mediaType"]), Digest.parse(str(d["digest"])), size,
                       dict(d.get("annotations") or {}),
                       Platform.from_json(plat) if plat else None,
                       tuple(d.get("urls") or ()))
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"malformed descriptor: missing or bad {e}") from None


@dataclass(frozen=True, slots=True)
class Manifest:
    """An image manifest: one config and an ordered stack of layers (base first)."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = OCI_MANIFEST
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type,
                             "config": self.config.to_json(),
                             "layers": [layer.to_json() for layer in self.layers]}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Manifest:
        if d.get("schemaVersion") != 2:
            raise ValueError(f"unsupported manifest schemaVersion {d.get('schemaVersion')!r}")
        media_type = d.get("mediaType") or OCI_MANIFEST
        if media_type not in MANIFEST_TYPES:
            raise ValueError(f"not an image manifest: mediaType {media_type!r}")
        return cls(Descriptor.from_json(d["config"]),
                   tuple(Descriptor.from_json(x) for x in d.get("layers") or ()),
                   media_type, dict(d.get("annotations") or {}))

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        return _checked(cls.from_json, _load(data, "manifest"), "manifest")


@dataclass(frozen=True, slots=True)
class Index:
    """An image index (or Docker manifest list): manifests per platform / per tag."""

    manifests: tuple[Descriptor, ...]
    media_type: str = OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type,
                             "manifests": [m.to_json() for m in self.manifests]}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Index:
        if d.get("schemaVersion") != 2:
            raise ValueError(f"unsupported index schemaVersion {d.get('schemaVersion')!r}")
        media_type = d.get("mediaType") or OCI_INDEX
        if media_type not in INDEX_TYPES:
            raise ValueError(f"not an image index: mediaType {media_type!r}")
        return cls(tuple(Descriptor.from_json(x) for x in d.get("manifests") or ()),
                   media_type, dict(d.get("annotations") or {}))

    @classmethod
    def from_bytes(cls, data: bytes) -> Index:
        return _checked(cls.from_json, _load(data, "index"), "index")


@dataclass(frozen=True, slots=True)
class History:
    """One entry of config.history: how a layer (or a config-only change) came to be."""

    created: str = ""
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False

    def to_json(self) -> dict[str, Any]:
        d = _drop_empty({"created": self.created, "created_by": self.created_by,
                         "author": self.author, "comment": self.comment})
        if self.empty_layer:
            d["empty_layer"] = True
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> History:
        return cls(d.get("created", "") or "", d.get("created_by", "") or "",
                   d.get("author", "") or "", d.get("comment", "") or "",
                   bool(d.get("empty_layer", False)))


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """config.config: the execution parameters (image-spec config.md `config`).

    Healthcheck, Shell and OnBuild are Docker extensions that Docker and BuildKit also write
    into OCI configs; we keep them so a round trip loses nothing.
    """

    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    healthcheck: Mapping[str, Any] | None = None
    shell: tuple[str, ...] | None = None
    on_build: tuple[str, ...] = ()
    args_escaped: bool = False

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = _drop_empty({
            "User": self.user,
            "ExposedPorts": {p: {} for p in self.exposed_ports},
            "Env": list(self.env),
            "Volumes": {v: {} for v in self.volumes},
            "WorkingDir": self.working_dir,
            "Labels": dict(self.labels),
            "StopSignal": self.stop_signal,
            "OnBuild": list(self.on_build),
        })
        # Entrypoint/Cmd: an explicit empty list differs from "unset" (docker reset semantics).
        if self.entrypoint is not None:
            d["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            d["Cmd"] = list(self.cmd)
        if self.healthcheck:
            d["Healthcheck"] = dict(self.healthcheck)
        if self.shell is not None:
            d["Shell"] = list(self.shell)
        if self.args_escaped:
            d["ArgsEscaped"] = True
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> ContainerConfig:
        d = d or {}

        def opt(key: str) -> tuple[str, ...] | None:
            v = d.get(key)
            return None if v is None else tuple(v)

        return cls(
            user=d.get("User") or "",
            exposed_ports=tuple(sorted((d.get("ExposedPorts") or {}).keys())),
            env=tuple(d.get("Env") or ()),
            entrypoint=opt("Entrypoint"),
            cmd=opt("Cmd"),
            volumes=tuple(sorted((d.get("Volumes") or {}).keys())),
            working_dir=d.get("WorkingDir") or "",
            labels=dict(d.get("Labels") or {}),
            stop_signal=d.get("StopSignal") or "",
            healthcheck=d.get("Healthcheck") or None,
            shell=opt("Shell"),
            on_build=tuple(d.get("OnBuild") or ()),
            args_escaped=bool(d.get("ArgsEscaped", False)),
        )


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The image configuration blob (image-spec config.md).

    `diff_ids` are the sha256 of each *uncompressed* layer tar, base first; `history` has one
    entry per layer plus one per config-only step (empty_layer=True).
    """

    architecture: str = "amd64"
    os: str = "linux"
    variant: str = ""
    created: str = ""
    author: str = ""
    config: ContainerConfig = field(default_factory=ContainerConfig)
    diff_ids: tuple[Digest, ...] = ()
    history: tuple[History, ...] = ()

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = _drop_empty({"architecture": self.architecture, "os": self.os,
                                         "variant": self.variant, "created": self.created,
                                         "author": self.author})
        d["config"] = self.config.to_json()
        d["rootfs"] = {"type": "layers", "diff_ids": [str(x) for x in self.diff_ids]}
        if self.history:
            d["history"] = [h.to_json() for h in self.history]
        return d

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ImageConfig:
        rootfs = d.get("rootfs") or {}
        if rootfs.get("type", "layers") != "layers":
            raise ValueError(f"unsupported rootfs type {rootfs.get('type')!r}")
        return cls(
            architecture=d.get("architecture", "") or "",
            os=d.get("os", "") or "",
            variant=d.get("variant", "") or "",
            created=d.get("created", "") or "",
            author=d.get("author", "") or "",
            config=ContainerConfig.from_json(d.get("config")),
            diff_ids=tuple(Digest.parse(x) for x in rootfs.get("diff_ids") or ()),
            history=tuple(History.from_json(h) for h in d.get("history") or ()),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ImageConfig:
        return _checked(cls.from_json, _load(data, "image config"), "image config")


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} is not valid JSON: {e}") from None
    except RecursionError:  # hostile nesting ([[[[…): json's C scanner recurses per level
        raise ValueError(f"{what} is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def _checked(parse: Callable[[Mapping[str, Any]], _T], doc: Mapping[str, Any], what: str) -> _T:
    """`parse(doc)`, with a missing field or a field of the wrong JSON type (documents from a
    registry, an archive or a cache are untrusted) reported as the ValueError callers expect
    rather than a KeyError/TypeError/AttributeError from deep inside."""
    try:
        return parse(doc)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{what} is malformed: missing or bad {e}") from None


def parse_document(data: bytes) -> Manifest | Index:
    """Parse a manifest or an index blob, by its `mediaType` or, when absent (allowed by the
    spec for older writers), by its shape. Raises ValueError when it is neither."""
    doc = _load(data, "manifest")
    mt = doc.get("mediaType") or ""
    if not isinstance(mt, str):
        raise ValueError("manifest mediaType is not a string")
    if mt in INDEX_TYPES or (not mt and "manifests" in doc):
        return _checked(Index.from_json, doc, "index")
    if mt in MANIFEST_TYPES or (not mt and "layers" in doc):
        return _checked(Manifest.from_json, doc, "manifest")
    raise ValueError(f"neither an image manifest nor an index (mediaType {mt!r})")


def media_type_of(data: bytes) -> str:
    """The `mediaType` a manifest/index blob declares ('' when absent)."""
    mt = _load(data, "manifest").get("mediaType")
    return mt if isinstance(mt, str) else ""
