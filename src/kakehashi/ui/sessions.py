"""Who is logged in to the web UI: per-party secrets, HMAC-signed session cookies, CSRF tokens.

* Credentials (:class:`Credentials`) live in ``ui-credentials.json`` in the network directory,
  readable by its owner only: the server's secret (the HMAC key of every session) and one login
  secret per party. :func:`load_or_create` writes them on the UI's first start.
* A session (:class:`Session`) names the party, a random session id, a CSRF token and an expiry.
  Its cookie is ``base64url(JSON) "." hex(HMAC-SHA256(server secret, base64url(JSON)))``; a cookie
  whose tag does not verify (forged, edited to name another party, signed by another server) or
  that has expired is no session at all.
* Every POST carries the session's CSRF token in a hidden field; :func:`check_csrf` compares it
  in constant time.
* Logging out revokes the session id for good (:class:`Revocations`: ``ui-revoked.log`` in the
  network directory, appended and synced before the logout is answered), so a restarted UI
  still refuses the cookie of a session that was logged out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kakehashi.errors import ConfigurationError, KakehashiError

CREDENTIALS_FILE = "ui-credentials.json"
REVOKED_FILE = "ui-revoked.log"
SESSION_COOKIE = "kakehashi_session"
LOGIN_COOKIE = "kakehashi_login"
"""A pre-login session (no party): the login form's CSRF token."""
SESSION_SECONDS = 8 * 3600


class AuthError(KakehashiError):
    """No valid session, wrong login secret, or a request not carrying its session's token."""


@dataclass(frozen=True)
class Credentials:
    """The server's HMAC key and each party's login secret."""

    server_secret: bytes
    secrets: dict[str, str]

    def check_login(self, party: str, secret: str) -> bool:
        """Whether ``secret`` is ``party``'s login secret (constant-time comparison)."""
        expected = self.secrets.get(party)
        # compare against something even for an unknown party, so timing says nothing
        return hmac.compare_digest((expected or "\0" * 32).encode(), secret.encode()) and (
            expected is not None
        )

    def to_json(self) -> dict[str, object]:
        return {"server_secret": self.server_secret.hex(), "parties": dict(self.secrets)}


def new_credentials(parties: Iterable[str]) -> Credentials:
    return Credentials(
        secrets.token_bytes(32), {name: secrets.token_urlsafe(18) for name in parties}
    )


def load_or_create(directory: Path, parties: Iterable[str]) -> tuple[Credentials, bool]:
    """The credentials in ``directory``; written (mode 0600) with fresh secrets when missing or
    when a party has none yet. Returns them and whether the file was (re)written."""
    path = directory / CREDENTIALS_FILE
    names = list(parties)
    if path.exists():
        try:
            raw = json.loads(path.read_text())
            current = Credentials(bytes.fromhex(raw["server_secret"]), dict(raw["parties"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"cannot read the UI credentials {path} ({exc}); remove it to make new ones"
            ) from None
        missing = [name for name in names if name not in current.secrets]
        if not missing:
            return current, False
        fresh = new_credentials(missing)
        current = Credentials(current.server_secret, {**current.secrets, **fresh.secrets})
    else:
        current = new_credentials(names)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(current.to_json(), indent=2) + "\n")
    return current, True


@dataclass(frozen=True)
class Session:
    party: str
    sid: str
    csrf: str
    expires: int


def new_session(party: str, now: float | None = None) -> Session:
    issued = int(time.time() if now is None else now)
    return Session(
        party, secrets.token_hex(16), secrets.token_urlsafe(24), issued + SESSION_SECONDS
    )


def _tag(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def sign(session: Session, key: bytes) -> str:
    """The cookie value of ``session``, signed with the server's secret ``key``."""
    body = json.dumps(
        {"p": session.party, "s": session.sid, "c": session.csrf, "e": session.expires},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    payload = base64.urlsafe_b64encode(body).rstrip(b"=")
    return payload.decode() + "." + _tag(key, payload)


def verify(cookie: str, key: bytes, now: float | None = None) -> Session:
    """The session a cookie carries; :class:`AuthError` when it is not signed with ``key`` or
    has expired."""
    payload, _, tag = cookie.partition(".")
    if not tag or not hmac.compare_digest(_tag(key, payload.encode()), tag):
        raise AuthError("this session is not valid (not signed by this server): log in again")
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        session = Session(str(body["p"]), str(body["s"]), str(body["c"]), int(body["e"]))
    except (ValueError, KeyError, TypeError):
        raise AuthError("this session cannot be read: log in again") from None
    if session.expires < (time.time() if now is None else now):
        raise AuthError("your session has expired: log in again")
    return session


def check_csrf(session: Session, token: str | None) -> None:
    """Refuse a POST whose hidden ``csrf`` field is not its session's token."""
    if not token or not hmac.compare_digest(session.csrf.encode(), token.encode()):
        raise AuthError(
            "the request did not carry this session's form token (CSRF check): reload the page "
            "and try again"
        )


class Revocations:
    """The session ids logged out before their expiry, kept in ``path`` (one ``sid expiry``
    line each, appended and fsynced): ``sid in revocations``. Opening it drops the expired
    lines (the file is rewritten, atomically); an unreadable line is a ConfigurationError."""

    def __init__(self, path: Path, now: float | None = None) -> None:
        self.path = path
        self._expiry: dict[str, int] = {}
        if not path.exists():
            return
        moment = time.time() if now is None else now
        where = "the file"
        try:
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines, start=1):
                where = f"line {number}"
                if line.strip():
                    sid, expiry = line.split()
                    self._expiry[sid] = int(expiry)
        except (OSError, ValueError):
            raise ConfigurationError(
                f"cannot read the UI's revoked sessions {path} ({where}); remove the file and "
                "every session ends at its expiry only"
            ) from None
        live = {sid: e for sid, e in self._expiry.items() if e >= moment}
        if len(live) != len(self._expiry):
            self._expiry = live
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(f"{sid} {e}\n" for sid, e in live.items()))
            os.chmod(tmp, 0o600)
            tmp.replace(path)

    def __contains__(self, sid: object) -> bool:
        return sid in self._expiry

    def add(self, session: Session) -> None:
        """Revoke ``session`` (on disk before this returns)."""
        if session.sid in self._expiry:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{session.sid} {session.expires}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._expiry[session.sid] = session.expires
