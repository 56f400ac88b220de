"""Image references: parse and normalise every way a user can name an image (ImageRef).

Forms accepted wherever an image is named:

* ``NAME[:TAG][@DIGEST]`` — a registry/store name with Docker's normalisation
  (``busybox`` → ``docker.io/library/busybox:latest``), as in distribution/reference
  (https://github.com/distribution/reference/blob/main/normalize.go).
* ``oci-layout://PATH[:TAG|@DIGEST]`` (BuildKit's spelling) and ``oci:PATH[:TAG]`` (skopeo's).
* ``oci-archive:FILE[:TAG]`` — a tar of an OCI image layout.
* ``docker-archive:FILE[:NAME:TAG]`` — a `docker save` tarball.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from builder.digest import Digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"

# distribution/reference grammar (regexp.go)
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_NAME_MAX = 255


class Transport(StrEnum):
    """Where the image lives."""

    NAME = "name"                      # the local store (or a registry, for pull/push)
    OCI_LAYOUT = "oci-layout"
    OCI_ARCHIVE = "oci-archive"
    DOCKER_ARCHIVE = "docker-archive"


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed image reference.

    For Transport.NAME: `domain`, `path` (e.g. ``library/busybox``), `tag` and/or `digest`.
    For the file transports: `location` (a path) and optionally `tag` (or, for a
    docker-archive, a full name in `path`/`domain`/`tag`) or `digest`.
    """

    transport: Transport
    domain: str = ""
    path: str = ""
    tag: str = ""
    digest: Digest | None = None
    location: str = ""

    # --- names ---------------------------------------------------------------------------------
    @property
    def repository(self) -> str:
        """``docker.io/library/busybox`` (no tag or digest)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def name(self) -> str:
        """The fully-qualified name the store files this image under:
        ``docker.io/library/busybox:latest`` or ``repo@sha256:…``."""
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    @property
    def familiar(self) -> str:
        """The short form Docker shows: ``busybox:latest``, ``me/app:1``, ``ghcr.io/x/y:2``."""
        repo = self.repository
        if self.domain == DEFAULT_DOMAIN:
            repo = self.path.removeprefix(OFFICIAL_REPO_PREFIX)
        out = repo
        if self.tag:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self.transport, self.domain, self.path, tag, None, self.location)

    def __str__(self) -> str:
        if self.transport is Transport.NAME:
            return self.name
        suffix = f":{self.tag}" if self.tag else ""
        if self.digest is not None:
            suffix = f"@{self.digest}"
        if self.transport is Transport.OCI_LAYOUT:
            return f"oci-layout://{self.location}{suffix}"
        if self.transport is Transport.DOCKER_ARCHIVE and self.path:
            return f"docker-archive:{self.location}:{self.name}"
        return f"{self.transport.value}:{self.location}{suffix}"


def parse_name(text: str) -> ImageRef:
    """Parse and normalise a ``NAME[:TAG][@DIGEST]``; ValueError with the reason if invalid.

    A tag defaults to ``latest`` only when neither a tag nor a digest is given (Docker's rule).
    """
    if not text:
        raise ValueError("empty image reference")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, _, dig = remainder.partition("@")
        try:
            digest = Digest.parse(dig)
        except ValueError:
            raise ValueError(f"invalid digest in {text!r}: {dig!r}") from None
    tag = ""
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG_RE.match(tag):
            raise ValueError(f"invalid tag in {text!r}: {tag!r}")
    domain, path = _split_domain(remainder)
    if not _PATH_RE.match(path):
        if path.lower() != path:
            raise ValueError(f"invalid reference {text!r}: repository name must be lowercase")
        raise ValueError(f"invalid reference format: {text!r}")
    if domain and not _DOMAIN_RE.match(domain):
        raise ValueError(f"invalid registry host in {text!r}: {domain!r}")
    if len(f"{domain}/{path}") > _NAME_MAX:
        raise ValueError(f"repository name longer than {_NAME_MAX} characters: {text!r}")
    if not tag and digest is None:
        tag = DEFAULT_TAG
    return ImageRef(Transport.NAME, domain, path, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    """distribution/reference splitDockerDomain."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path


def _split_location(rest: str, text: str) -> tuple[str, str, Digest | None]:
    """PATH[:TAG|@DIGEST] → (path, tag, digest). A ':' before the last '/' belongs to the path."""
    digest = None
    if "@sha256:" in rest:
        rest, _, dig = rest.rpartition("@")
        digest = Digest.parse(dig)
    tag = ""
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise ValueError(f"invalid tag in {text!r}: {tag!r}")
    if not rest:
        raise ValueError(f"missing path in {text!r}")
    return rest, tag, digest


def parse(text: str) -> ImageRef:
    """Parse any accepted image reference form (see the module docstring)."""
    for prefix in ("oci-layout://", "oci:"):
        if text.startswith(prefix):
            loc, tag, digest = _split_location(text[len(prefix):], text)
            return ImageRef(Transport.OCI_LAYOUT, tag=tag, digest=digest, location=loc)
    if text.startswith("oci-archive:"):
        loc, tag, digest = _split_location(text[len("oci-archive:"):], text)
        return ImageRef(Transport.OCI_ARCHIVE, tag=tag, digest=digest, location=loc)
    if text.startswith("docker-archive:"):
        rest = text[len("docker-archive:"):]
        # skopeo: docker-archive:PATH[:NAME:TAG] — the name itself has a ':' before the tag.
        loc, sep, name = rest.partition(":")
        if not loc:
            raise ValueError(f"missing path in {text!r}")
        if sep and name:
            ref = parse_name(name)
            return ImageRef(Transport.DOCKER_ARCHIVE, ref.domain, ref.path, ref.tag, ref.digest,
                            loc)
        return ImageRef(Transport.DOCKER_ARCHIVE, location=loc)
    return parse_name(text)
