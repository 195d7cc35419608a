"""Getting the bytes behind a media URL: ``data:``, ``http(s)://`` and (opt-in) ``file://``.

Every path is capped in bytes and time, and every failure is a ``MediaError`` (a 400):
a media host that times out or answers 404 is the client's URL being wrong, not a
server fault. HTTP fetching is guarded against SSRF (see ``netguard``): the host is
resolved once, every address is checked, and the connection goes to the checked
address (with the original Host header and TLS server name), so a DNS answer that
changes between the check and the connection (DNS rebinding) cannot redirect it.
Redirects are followed by hand so each hop is checked by the same rules.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from omni_sglang.media.datauri import parse_data_uri
from omni_sglang.media.errors import MediaError, MediaLimitError
from omni_sglang.media.limits import MediaLimits, describe_bytes
from omni_sglang.media.netguard import parse_ip, resolve_public

DEFAULT_USER_AGENT = "Mozilla/5.0 (compatible; omni-sglang/0.1; media fetcher)"
_REDIRECTS = {301, 302, 303, 307, 308}
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class FetchPolicy:
    limits: MediaLimits = field(default_factory=MediaLimits)
    #: Hosts media may come from (a name also admits its subdomains); None: any public host.
    allowed_domains: Collection[str] | None = None
    #: Turn the SSRF guard off entirely (a trusted network, or tests).
    allow_private_hosts: bool = False
    #: Hosts (names or IP literals, as spelled in the URL) exempt from the SSRF guard,
    #: e.g. an internal media store. Redirects out of them are checked as usual.
    allowed_private_hosts: Collection[str] = frozenset()
    #: Folder ``file://`` URLs may read from; None refuses ``file://``.
    allowed_local_path: str | None = None
    #: Some hosts refuse requests without a browser-like User-Agent; NIM notes the same.
    user_agent: str = DEFAULT_USER_AGENT

    def __post_init__(self) -> None:
        # Accept any iterable of names, store normalised frozensets (hashable policy).
        if self.allowed_domains is not None:
            domains = frozenset(_norm_host(d) for d in _as_iter(self.allowed_domains))
            object.__setattr__(self, "allowed_domains", domains)
        hosts = frozenset(_norm_host(h) for h in _as_iter(self.allowed_private_hosts))
        object.__setattr__(self, "allowed_private_hosts", hosts)


def _as_iter(value: Iterable[str] | str) -> Iterable[str]:
    return [value] if isinstance(value, str) else value


def _norm_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


async def load_bytes(url: str, policy: FetchPolicy, *, max_bytes: int | None = None) -> bytes:
    """The bytes of ``url``; ``max_bytes`` defaults to the largest per-item limit."""
    cap = policy.limits.max_fetch_bytes if max_bytes is None else max_bytes
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        if len(url) > 1 << 20:
            # Large base64 strings take tens of ms to decode: keep the event loop free.
            return (await asyncio.to_thread(parse_data_uri, url, cap)).data
        return parse_data_uri(url, cap).data
    if scheme in ("http", "https"):
        return await _fetch_http(url, policy, cap)
    if scheme == "file":
        return await asyncio.to_thread(_read_local_file, url, policy, cap)
    shown = url if len(url) <= 40 else url[:40] + "..."
    raise MediaError(
        f"media URL {shown!r} is not supported; use an http(s) URL or a data: URI "
        "(data:<mime>;base64,<data>)"
    )


# --- http(s) ------------------------------------------------------------------------------


@dataclass
class _Hop:
    """One request to make: the URL to connect to plus what keeps the real name."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]
    host: str


async def _fetch_http(url: str, policy: FetchPolicy, cap: int) -> bytes:
    limits = policy.limits
    timeout = httpx.Timeout(
        connect=limits.connect_timeout,
        read=limits.read_timeout,
        write=limits.read_timeout,
        pool=limits.connect_timeout,
    )
    host = "?"
    try:
        async with asyncio.timeout(limits.total_fetch_timeout):
            # A client per fetch: a pooled TLS connection made for one name must never
            # carry a request for another name that happens to share the address.
            # trust_env=False: a proxy from the environment would bypass the address check.
            async with httpx.AsyncClient(
                timeout=timeout, follow_redirects=False, trust_env=False, verify=_ssl_context()
            ) as client:
                current = url
                for hop_no in range(limits.max_redirects + 1):
                    hop = await _prepare_hop(current, policy)
                    host = hop.host
                    async with client.stream(
                        "GET", hop.url, headers=hop.headers, extensions=hop.extensions
                    ) as resp:
                        location = resp.headers.get("location")
                        if resp.status_code in _REDIRECTS and location:
                            if hop_no == limits.max_redirects:
                                raise MediaError(
                                    f"media URL {url} redirected more than "
                                    f"{limits.max_redirects} times; the limit is "
                                    f"{limits.max_redirects} redirects"
                                )
                            current = urljoin(current, location)
                            continue
                        if resp.status_code >= 400 or resp.status_code < 200:
                            raise MediaError(
                                f"media URL could not be fetched: {host} answered HTTP "
                                f"{resp.status_code} for {current}"
                            )
                        return await _read_capped(resp, cap, current)
    except TimeoutError as exc:
        raise MediaError(
            f"media URL could not be fetched: the download from {host} took longer than "
            f"{limits.total_fetch_timeout:g} s"
        ) from exc
    except httpx.TimeoutException as exc:
        raise MediaError(
            f"media URL could not be fetched: {host} timed out ({type(exc).__name__}; "
            f"limits: connect {limits.connect_timeout:g} s, read {limits.read_timeout:g} s)"
        ) from exc
    except httpx.InvalidURL as exc:
        # httpx builds the next request of any redirect (even when not following it),
        # so a Location such as "data:,x" fails inside httpx, before our own check.
        raise MediaError(
            f"media URL {url} redirected to an invalid URL ({exc}); only http(s) URLs may "
            "be fetched"
        ) from exc
    except (httpx.HTTPError, httpx.StreamError) as exc:
        raise MediaError(
            f"media URL could not be fetched from {host}: {type(exc).__name__}: {exc}"
        ) from exc
    raise AssertionError("unreachable: the loop returns or raises")


async def _prepare_hop(url: str, policy: FetchPolicy) -> _Hop:
    try:
        parsed = httpx.URL(url)
        raw_host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise MediaError(f"media URL {url!r} is not a valid URL: {exc}") from exc
    if parsed.scheme not in _DEFAULT_PORTS:
        # Reached through a redirect: a Location of file:, data:, gopher: ...
        raise MediaError(f"media URL redirected to {url!r}; only http(s) URLs may be fetched")
    if parsed.userinfo:
        raise MediaError("media URLs with a user name or password are not supported")
    host = _norm_host(raw_host)
    if not host:
        raise MediaError(f"media URL {url!r} has no host")
    if policy.allowed_domains is not None and not _domain_allowed(host, policy.allowed_domains):
        raise MediaError(
            f"media URL host {host} is not allowed; allowed domains: "
            f"{', '.join(sorted(policy.allowed_domains))}"
        )
    headers = {"User-Agent": policy.user_agent, "Accept-Encoding": "identity"}
    if policy.allow_private_hosts or host in policy.allowed_private_hosts:
        return _Hop(parsed, headers, {}, host)

    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    ip = await resolve_public(raw_host, port)
    # Pin the connection to the address just checked; keep the name for the server.
    host_header = f"[{raw_host}]" if ":" in raw_host else raw_host
    if parsed.port is not None:
        host_header += f":{parsed.port}"
    headers["Host"] = host_header
    extensions = {}
    if parsed.scheme == "https" and parse_ip(raw_host) is None:
        extensions["sni_hostname"] = raw_host  # also the name the certificate is checked for
    return _Hop(parsed.copy_with(host=str(ip)), headers, extensions, host)


def _domain_allowed(host: str, allowed: Collection[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in allowed)


async def _read_capped(resp: httpx.Response, cap: int, url: str) -> bytes:
    declared = resp.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise MediaLimitError(
            f"media at {url} is {describe_bytes(int(declared))}; the limit for this kind "
            f"of media is {describe_bytes(cap)}"
        )
    buf = bytearray()
    # Accept-Encoding is identity, so these are the bytes on the wire: the cap holds
    # even against a server that sends a compressed body anyway.
    async for chunk in resp.aiter_bytes():
        buf += chunk
        if len(buf) > cap:
            raise MediaLimitError(
                f"media at {url} is larger than {describe_bytes(cap)}, the limit for this "
                "kind of media; the download was stopped"
            )
    if not buf:
        raise MediaError(f"media URL could not be fetched: {url} returned no data")
    return bytes(buf)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Building a context (loading the CA bundle) costs ~10 ms: once per process.
    return httpx.create_ssl_context()


# --- file:// ------------------------------------------------------------------------------


def _read_local_file(url: str, policy: FetchPolicy, cap: int) -> bytes:
    if policy.allowed_local_path is None:
        raise MediaError("file:// media URLs are not allowed on this server")
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise MediaError(f"file:// URL host {parts.netloc!r} is not allowed; use file:///path")
    path = unquote(parts.path)
    try:
        root = os.path.realpath(policy.allowed_local_path)
        # realpath resolves symlinks and "..": containment is judged on the real target.
        real = os.path.realpath(path)
        inside = os.path.commonpath([root, real]) == root
    except (ValueError, OSError) as exc:
        raise MediaError(f"file:// URL path {path!r} is not valid: {exc}") from exc
    if not inside:
        raise MediaError(f"file {path} is outside the folder this server may read media from")
    try:
        with open(real, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > cap:
                raise MediaLimitError(
                    f"file {path} is {describe_bytes(size)}; the limit for this kind of "
                    f"media is {describe_bytes(cap)}"
                )
            data = f.read(cap + 1)
    except MediaError:
        raise
    except FileNotFoundError as exc:
        raise MediaError(f"file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise MediaError(f"file {path} is a directory") from exc
    except OSError as exc:
        raise MediaError(f"file {path} could not be read: {exc.strerror}") from exc
    if len(data) > cap:
        raise MediaLimitError(f"file {path} is larger than {describe_bytes(cap)}")
    if not data:
        raise MediaError(f"file {path} is empty")
    return data
