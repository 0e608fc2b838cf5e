"""Passwords never shown: redaction for any text, and why libpq would refuse a URL, said without its password."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


@functools.lru_cache(maxsize=4096)
def url_params(url: str) -> Mapping[str, Any]:
    """libpq's reading of a URL (host, port, dbname, ...), parsed once per run: checked by `url_problem`, then read
    by identity for every service (a parse is some 0.1 ms); raises psycopg's ProgrammingError for a bad one."""
    from psycopg.conninfo import conninfo_to_dict

    return MappingProxyType(conninfo_to_dict(url))


@functools.lru_cache(maxsize=4096)
def url_problem(url: str) -> str | None:
    """Why libpq would refuse `url` (None when it would not): its scheme, syntax or port. Never the password."""
    if "://" in url and not re.match(r"^postgres(?:ql)?://", url):
        return f"the scheme {url.split('://', 1)[0]}:// is not postgresql://"
    try:
        params = url_params(url)
    except Exception as exc:  # psycopg raises ProgrammingError with libpq's reason, which may quote the password
        reason = str(exc).strip()
        for secret in _passwords(url):
            reason = reason.replace(secret, "***")
        return redact(reason)
    for port in str(params.get("port") or "5432").split(","):
        if not port.isdigit() or not 0 < int(port) < 65536:
            return redact(f"port {port!r} is not a number from 1 to 65535")  # (what follows a bad port may be)
    return None


_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]+)", re.IGNORECASE)
# user:password@ after a scheme (postgresql://, jdbc:postgresql://, mysql://…), the start, or a space:
# everything up to the last @ of the token is the password, however it is escaped (or not).
_USERINFO = re.compile(r"((?:^|://|\s)[^\s:/@]*:)(?!//)(?![^\s@]*://)\S*@")


def _passwords(text: str) -> list[str]:
    """The password parts of `text`, longest first, as `redact` would hide them."""
    found = [m[0][len(m[1]) : -1] for m in _USERINFO.finditer(text)]
    found += [m[2].strip("'") for m in _KEYWORD_PASSWORD.finditer(text)]
    return sorted((f for f in found if f), key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every password replaced by `***`: any string, URL or not, well-formed or not."""
    return _USERINFO.sub(r"\1***@", _KEYWORD_PASSWORD.sub(r"\1***", text))
