"""Getting media bytes: data URIs, http(s) with caps/redirects/errors, the SSRF guard, file://.

HTTP tests use a local server on 127.0.0.1 (allowed through the policy); the SSRF tests
never connect anywhere: ``httpx.AsyncClient.stream`` is replaced by a tripwire.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import time
from urllib.parse import quote

import httpx
import pytest

from omni_sglang.media import fetch as fetch_mod
from omni_sglang.media import netguard
from omni_sglang.media.errors import MediaError, MediaLimitError
from omni_sglang.media.fetch import FetchPolicy, load_bytes
from omni_sglang.media.limits import MediaLimits
from omni_sglang.media.testserver import MediaServer

BODY = bytes(range(256)) * 40  # 10240 bytes
OPEN = FetchPolicy(allow_private_hosts=True)


@pytest.fixture(scope="module")
def server():
    with MediaServer({"/file.bin": BODY}) as srv:
        yield srv


@pytest.fixture
def no_connect(monkeypatch):
    """Any attempt to open an HTTP connection fails the test."""

    def tripwire(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args[1:]}")

    monkeypatch.setattr(httpx.AsyncClient, "stream", tripwire)


# --- data: URIs ---------------------------------------------------------------------------


async def test_data_uri_base64():
    url = "data:application/octet-stream;base64," + base64.b64encode(BODY).decode()
    assert await load_bytes(url, FetchPolicy()) == BODY


async def test_data_uri_percent_encoded():
    assert await load_bytes("data:," + quote(BODY[:300]), FetchPolicy()) == BODY[:300]


async def test_data_uri_wrapped_and_urlsafe_base64():
    b64 = base64.b64encode(BODY).decode()
    wrapped = "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
    assert await load_bytes("data:image/png;base64," + wrapped, FetchPolicy()) == BODY
    safe = base64.urlsafe_b64encode(BODY).decode()
    assert await load_bytes("data:image/png;base64," + safe, FetchPolicy()) == BODY


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("data:image/png;base64,@@@@", "not valid base64"),
        ("data:image/png;base64", "no ','"),
        ("data:image/png;base64,", "empty"),
        ("data:nonsense;base64,AAAA", "type/subtype"),
    ],
)
async def test_bad_data_uris(url, words):
    with pytest.raises(MediaError, match=words):
        await load_bytes(url, FetchPolicy())


async def test_data_uri_size_cap_is_checked_before_decoding():
    url = "data:image/png;base64," + "A" * 4000  # ~3000 bytes, and not even decoded
    with pytest.raises(MediaLimitError, match="the limit for this kind of media is 1000 bytes"):
        await load_bytes(url, FetchPolicy(), max_bytes=1000)


# --- http(s) ------------------------------------------------------------------------------


async def test_http_fetch_sends_user_agent(server):
    policy = FetchPolicy(allow_private_hosts=True, user_agent="test-agent/1")
    assert await load_bytes(server.url + "/file.bin", policy) == BODY
    assert server.user_agents[-1] == "test-agent/1"


async def test_http_byte_cap_from_content_length(server):
    with pytest.raises(MediaLimitError, match="limit for this kind of media is 1000 bytes"):
        await load_bytes(server.url + "/file.bin", OPEN, max_bytes=1000)


async def test_http_byte_cap_while_streaming(server):
    with pytest.raises(MediaLimitError, match="the download was stopped"):
        await load_bytes(server.url + "/file.bin?nolength", OPEN, max_bytes=1000)


@pytest.mark.parametrize("status", [403, 404, 500, 503])
async def test_http_error_status_is_a_400(server, status):
    with pytest.raises(MediaError, match=f"could not be fetched.*HTTP {status}") as info:
        await load_bytes(f"{server.url}/status/{status}", OPEN)
    assert info.value.status_code == 400


async def test_connection_refused_is_a_media_error():
    with pytest.raises(MediaError, match="could not be fetched"):
        await load_bytes("http://127.0.0.1:1/x", OPEN)


async def test_read_timeout(server):
    policy = FetchPolicy(allow_private_hosts=True, limits=MediaLimits(read_timeout=0.3))
    started = time.monotonic()
    with pytest.raises(MediaError, match="timed out"):
        await load_bytes(server.url + "/slow", policy)
    assert time.monotonic() - started < 1.5


async def test_total_timeout(server):
    limits = MediaLimits(read_timeout=10, total_fetch_timeout=0.3)
    with pytest.raises(MediaError, match=r"took longer than 0.3 s"):
        await load_bytes(server.url + "/slow", FetchPolicy(allow_private_hosts=True, limits=limits))


def chain(server, hops: int, target: str) -> str:
    url = target
    for _ in range(hops):
        url = f"{server.url}/redirect?to={quote(url, safe='')}"
    return url


async def test_redirects_are_followed_up_to_the_limit(server):
    assert await load_bytes(chain(server, 3, server.url + "/file.bin"), OPEN) == BODY
    with pytest.raises(MediaError, match="more than 3 times; the limit is 3 redirects"):
        await load_bytes(chain(server, 4, server.url + "/file.bin"), OPEN)


@pytest.mark.parametrize("target", ["file:///etc/passwd", "data:,hello", "gopher://x/"])
async def test_redirect_to_other_schemes_is_refused(server, target):
    with pytest.raises(MediaError, match="only http\\(s\\) URLs may be fetched"):
        await load_bytes(chain(server, 1, target), OPEN)


async def test_redirect_from_allowed_host_to_private_address_is_refused(server):
    # The loopback server is allowed by name; the hop to 10.0.0.1 is checked anew and
    # refused before connecting (a connection attempt would time out, not say this).
    policy = FetchPolicy(allowed_private_hosts={"127.0.0.1"})
    before = server.hits["/redirect"]
    started = time.monotonic()
    with pytest.raises(MediaError, match=r"10\.0\.0\.1 resolves to a non-public address"):
        await load_bytes(chain(server, 1, "http://10.0.0.1/secret"), policy)
    assert server.hits["/redirect"] == before + 1
    assert time.monotonic() - started < 2


async def test_connection_is_pinned_to_the_checked_address(server, monkeypatch):
    # "media.test" "resolves" (checked) to the loopback server: the request must go to
    # that address with the original Host header, without asking DNS again.
    async def fake_resolve_public(host, port):
        assert host == "media.test"
        return ipaddress.ip_address("127.0.0.1")

    monkeypatch.setattr(fetch_mod, "resolve_public", fake_resolve_public)
    url = f"http://media.test:{server.port}/file.bin"
    assert await load_bytes(url, FetchPolicy()) == BODY
    assert server.host_headers[-1] == f"media.test:{server.port}"


async def test_https_hop_carries_sni_and_host(monkeypatch):
    async def fake_resolve_public(host, port):
        return ipaddress.ip_address("93.184.216.34")

    monkeypatch.setattr(fetch_mod, "resolve_public", fake_resolve_public)
    hop = await fetch_mod._prepare_hop("https://Example.com:8443/a?b=1", FetchPolicy())
    assert str(hop.url) == "https://93.184.216.34:8443/a?b=1"
    assert hop.headers["Host"] == "example.com:8443"
    assert hop.extensions == {"sni_hostname": "example.com"}


# --- the SSRF guard -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "[::ffff:127.0.0.1]",
        "[::ffff:a00:1]",
        "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
        "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
        "[fe80::1]",
        "[fc00::1]",
        "224.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "localhost",
        "127.1",
        "0x7f000001",
    ],
)
async def test_private_addresses_are_refused_before_connecting(host, no_connect):
    with pytest.raises(MediaError, match="non-public address") as info:
        await load_bytes(f"http://{host}/latest/meta-data", FetchPolicy())
    assert "only public internet hosts may be fetched" in info.value.message
    assert info.value.status_code == 400


async def test_a_name_with_any_private_address_is_refused(monkeypatch, no_connect):
    async def mixed(host, port):
        return [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.1.2.3")]

    monkeypatch.setattr(netguard, "resolve", mixed)
    with pytest.raises(MediaError, match=r"media.test \(10.1.2.3\) resolves to a non-public"):
        await load_bytes("https://media.test/x.jpg", FetchPolicy())


def test_public_addresses_pass():
    for ip in ["8.8.8.8", "2606:4700::1111", "93.184.216.34"]:
        assert netguard.blocked_reason(ipaddress.ip_address(ip)) is None


async def test_allowed_domains(no_connect):
    policy = FetchPolicy(allowed_domains={"example.com"})
    assert fetch_mod._domain_allowed("cdn.example.com", policy.allowed_domains)
    assert not fetch_mod._domain_allowed("badexample.com", policy.allowed_domains)
    with pytest.raises(MediaError, match=r"host evil.com is not allowed; allowed domains: example"):
        await load_bytes("https://evil.com/a.png", policy)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://user:pw@example.com/a.png", "user name or password"),
        ("ftp://example.com/a.png", "not supported"),
        ("/etc/passwd", "not supported"),
        ("iVBORw0KGgoAAAANSUhEUg", "not supported"),
        ("http:///nohost", "no host|not a valid URL"),
    ],
)
async def test_unsupported_urls(url, words, no_connect):
    with pytest.raises(MediaError, match=words):
        await load_bytes(url, FetchPolicy())


# --- file:// ------------------------------------------------------------------------------


@pytest.fixture
def media_dir(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    (root / "ok.bin").write_bytes(BODY)
    (tmp_path / "secret.txt").write_bytes(b"secret")
    os.symlink(tmp_path / "secret.txt", root / "escape.bin")
    os.symlink(root / "ok.bin", root / "alias.bin")
    return root


async def test_file_urls_refused_by_default(media_dir):
    with pytest.raises(MediaError, match="file:// media URLs are not allowed"):
        await load_bytes(f"file://{media_dir}/ok.bin", FetchPolicy())


async def test_file_inside_allowed_folder(media_dir):
    policy = FetchPolicy(allowed_local_path=str(media_dir))
    assert await load_bytes(f"file://{media_dir}/ok.bin", policy) == BODY
    assert await load_bytes(f"file://{media_dir}/alias.bin", policy) == BODY  # symlink inside


@pytest.mark.parametrize(
    "rel", ["../secret.txt", "escape.bin", "sub/../../secret.txt", "%2E%2E/secret.txt"]
)
async def test_file_escapes_are_refused(media_dir, rel):
    policy = FetchPolicy(allowed_local_path=str(media_dir))
    with pytest.raises(MediaError, match="outside the folder"):
        await load_bytes(f"file://{media_dir}/{rel}", policy)


async def test_file_errors(media_dir):
    policy = FetchPolicy(allowed_local_path=str(media_dir))
    with pytest.raises(MediaError, match="does not exist"):
        await load_bytes(f"file://{media_dir}/missing.bin", policy)
    with pytest.raises(MediaError, match="is a directory"):
        await load_bytes(f"file://{media_dir}", policy)
    with pytest.raises(MediaLimitError, match="limit for this kind of media is 100 bytes"):
        await load_bytes(f"file://{media_dir}/ok.bin", policy, max_bytes=100)
    with pytest.raises(MediaError, match="host 'remote' is not allowed"):
        await load_bytes(f"file://remote{media_dir}/ok.bin", policy)
