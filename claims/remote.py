"""A running Dask scheduler and how this controller trusts it.

Dask workers execute the pickled functions they are sent, so whoever can reach a scheduler can run
code on its workers. A shared cluster is therefore reached over ``tls://`` with mutual TLS: the
controller, the scheduler and the workers each hold a certificate signed by the cluster's CA, and a
peer without one is refused during the handshake. :class:`Remote` carries the address, the TLS files
(``--tls-ca-file``, ``--tls-cert``, ``--tls-key``; when none is given, Dask's own configuration
``distributed.comm.tls.ca-file`` / ``client.cert`` / ``client.key`` is used) and whether workers that
differ from the controller may run cells (``--allow-mixed-workers``, :mod:`claims.workercheck`).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any

__all__ = ["Remote", "plain_tcp_risk", "is_loopback"]


def _split(address: str) -> tuple[str, str]:
    """(scheme, host) of a Dask address; a bare ``HOST:PORT`` is tcp, as in Dask."""
    scheme, sep, rest = address.strip().partition("://")
    if not sep:
        scheme, rest = "tcp", address.strip()
    host = rest.rsplit(":", 1)[0] if rest.count(":") == 1 or rest.startswith("[") else rest
    return scheme.lower(), host.strip("[]")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address) names this machine's loopback interface only."""
    if host in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def plain_tcp_risk(address: str) -> str | None:
    """One line naming the risk of an unencrypted address to another machine; None for ``tls://`` or
    loopback addresses."""
    scheme, host = _split(address)
    if scheme != "tcp" or is_loopback(host):
        return None
    return (f"warning: {address} is plain tcp to another machine: anyone who can reach that scheduler can "
            f"run code on its workers and read or alter the results; use tls:// with --tls-ca-file, "
            f"--tls-cert and --tls-key")


def _readable(path: str, option: str) -> str:
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise ValueError(f"{option} {path!r}: no such file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{option} {path!r}: not readable")
    return path


@dataclass(frozen=True)
class Remote:
    """A scheduler address (``tcp://HOST:PORT``, ``tls://HOST:PORT``) with the TLS files that admit
    this controller, and ``allow_mixed_workers``: run even when workers differ from the controller."""

    address: str
    tls_ca_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    allow_mixed_workers: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address.strip():
            raise ValueError(f"--scheduler must be an address like tls://HOST:8786, got {self.address!r}")
        given = {opt: v for opt, v in (("--tls-ca-file", self.tls_ca_file), ("--tls-cert", self.tls_cert),
                                       ("--tls-key", self.tls_key)) if v is not None}
        if given and self.scheme != "tls":
            raise ValueError(f"{next(iter(given))} needs a tls:// scheduler address, got {self.address!r}")
        if self.tls_key is not None and self.tls_cert is None:
            raise ValueError("--tls-key needs --tls-cert (the certificate the key belongs to)")
        if (self.tls_ca_file is None) != (self.tls_cert is None):
            missing = "--tls-cert" if self.tls_cert is None else "--tls-ca-file"
            raise ValueError(f"{missing} is missing: TLS needs the cluster's CA (--tls-ca-file) and this "
                             f"controller's certificate (--tls-cert, with --tls-key unless the key is in it)")
        if self.tls_cert is not None:  # files given here are checked at once, each error naming its option
            ca = _readable(self.tls_ca_file, "--tls-ca-file")
            cert = _readable(self.tls_cert, "--tls-cert")
            key = _readable(self.tls_key, "--tls-key") if self.tls_key is not None else None
            _check_loads(ca, cert, key, ("--tls-ca-file", "--tls-cert", "--tls-key"))
        elif self.scheme == "tls":
            self.security()  # Dask's configuration must name them

    @property
    def scheme(self) -> str:
        return _split(self.address)[0]

    def security(self) -> Any:
        """The ``distributed.security.Security`` for this address: from the files given, else from Dask's
        configuration for ``tls://`` (checked here, each error naming its key); None for plain tcp."""
        from distributed.security import Security

        if self.tls_cert is not None:
            return Security(tls_ca_file=os.path.expanduser(self.tls_ca_file),
                            tls_client_cert=os.path.expanduser(self.tls_cert),
                            tls_client_key=None if self.tls_key is None else os.path.expanduser(self.tls_key),
                            require_encryption=True)
        if self.scheme != "tls":
            return None
        security = Security()  # Dask's configuration: distributed.comm.tls.*
        if not (security.tls_ca_file and security.tls_client_cert):
            raise ValueError(f"--scheduler {self.address}: no TLS certificates; give --tls-ca-file, --tls-cert "
                             f"and --tls-key, or set distributed.comm.tls.ca-file and client.cert/client.key "
                             f"in Dask's configuration")
        _check_loads(security.tls_ca_file, security.tls_client_cert, security.tls_client_key,
                     ("distributed.comm.tls.ca-file", "distributed.comm.tls.client.cert",
                      "distributed.comm.tls.client.key"))
        return security

    def describe(self) -> dict:
        """For ``_run.json``: the transport (file paths are not recorded)."""
        return {"transport": "tls (mutual certificates)" if self.scheme == "tls" else self.scheme}


def _check_loads(ca: str, cert: str, key: str | None, options: tuple[str, str, str]) -> None:
    """Load the CA and the certificate chain once, so that a malformed file is named by its option."""
    try:
        ctx = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH, cafile=ca)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"{options[0]} {ca!r}: not a PEM CA certificate ({exc.__class__.__name__}: "
                         f"{getattr(exc, 'reason', None) or exc})") from None
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        which = f"{options[1]} {cert!r}" + (f" / {options[2]} {key!r}" if key else "")
        raise ValueError(f"{which}: not a PEM certificate and matching private key ({exc.__class__.__name__}: "
                         f"{getattr(exc, 'reason', None) or exc})") from None
