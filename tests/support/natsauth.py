"""A secured private nats-server for tests: users with permissions, operator-mode JWTs and
`.creds` files, and a throwaway TLS certificate authority."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from motionledger.adapters.nats.broker import INBOX_PREFIX


# -- TLS -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_tls(directory: Path, host: str = "127.0.0.1") -> Tls:
    """A CA and a server certificate for `host` (IP and localhost SANs), valid for a day."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "motionledger test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, tls.key)
    return tls


def tls_block(tls: Tls) -> str:
    return f'tls {{\n  cert_file: "{tls.cert}"\n  key_file: "{tls.key}"\n  timeout: 5\n}}\n'


# -- permissions -------------------------------------------------------------------------
def daemon_permissions(root: str) -> dict[str, Any]:
    """What the ledger needs: the JetStream API and its own inbox (nobody else's); publishing
    on the production subjects too, for the HTTP write routes."""
    return {
        "pub": {"allow": ["$JS.API.>", f"{root}.>"]},
        "sub": {"allow": [f"{INBOX_PREFIX}.>"]},
    }


def producer_permissions(root: str) -> dict[str, Any]:
    """A producer publishes events and reads its publish acks; it cannot touch the stream's
    API (no consumers, no reads) nor listen on the production subjects."""
    return {"pub": {"allow": [f"{root}.>"]}, "sub": {"allow": ["_INBOX.>"]}}


def _server_permissions(perms: dict[str, Any]) -> dict[str, Any]:
    return {"publish": perms["pub"], "subscribe": perms["sub"]}


def password_config(root: str, passwords: dict[str, str]) -> str:
    """One account with JetStream and two users: `ledger` (the daemon) and `producer`."""
    users = [
        {
            "user": "ledger",
            "password": passwords["ledger"],
            "permissions": _server_permissions(daemon_permissions(root)),
        },
        {
            "user": "producer",
            "password": passwords["producer"],
            "permissions": _server_permissions(producer_permissions(root)),
        },
    ]
    # nats-server's config format accepts JSON values
    return "accounts: " + json.dumps({"LEDGER": {"jetstream": "enabled", "users": users}}) + "\n"


# -- operator mode: JWTs and .creds files ------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _new_key(prefix: int) -> Any:
    return nkeys.from_seed(nkeys.encode_seed(os.urandom(32), prefix))


def _jwt(claims: dict[str, Any], signer: Any) -> str:
    body = dict(claims, iat=int(time.time()))
    # jti: a hash of the claims, in the form the NATS JWT library writes it
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    body["jti"] = base64.b32encode(digest).decode().rstrip("=")
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = _b64(json.dumps(body).encode())
    signature = signer.sign(f"{header}.{payload}".encode())
    return f"{header}.{payload}.{_b64(signature)}"


@dataclass(frozen=True)
class Operator:
    config: str  # the server config lines for operator mode
    creds: dict[str, Path]  # user name -> .creds file


def operator_mode(directory: Path, users: dict[str, dict[str, Any]]) -> Operator:
    """An operator, one JetStream account, and users (name -> permissions) with creds files."""
    directory.mkdir(parents=True, exist_ok=True)
    operator = _new_key(nkeys.PREFIX_BYTE_OPERATOR)
    account = _new_key(nkeys.PREFIX_BYTE_ACCOUNT)
    system = _new_key(nkeys.PREFIX_BYTE_ACCOUNT)
    op_pub = operator.public_key.decode()
    operator_jwt = _jwt(
        {
            "iss": op_pub,
            "sub": op_pub,
            "name": "test-operator",
            "nats": {
                "type": "operator",
                "version": 2,
                "system_account": system.public_key.decode(),
            },
        },
        operator,
    )
    limits = {
        "subs": -1,
        "data": -1,
        "payload": -1,
        "imports": -1,
        "exports": -1,
        "wildcards": True,
        "conn": -1,
        "leaf": -1,
        "mem_storage": -1,
        "disk_storage": -1,
        "streams": -1,
        "consumer": -1,
    }

    def account_jwt(key: Any, name: str, jetstream: bool) -> str:
        account_limits = (
            limits
            if jetstream
            else {
                k: v
                for k, v in limits.items()
                if "storage" not in k and k not in ("streams", "consumer")
            }
        )
        return _jwt(
            {
                "iss": op_pub,
                "sub": key.public_key.decode(),
                "name": name,
                "nats": {"type": "account", "version": 2, "limits": account_limits},
            },
            operator,
        )

    creds: dict[str, Path] = {}
    for name, perms in users.items():
        user = _new_key(nkeys.PREFIX_BYTE_USER)
        user_jwt = _jwt(
            {
                "iss": account.public_key.decode(),
                "sub": user.public_key.decode(),
                "name": name,
                "nats": {
                    "type": "user",
                    "version": 2,
                    "subs": -1,
                    "data": -1,
                    "payload": -1,
                    **perms,
                },
            },
            account,
        )
        path = directory / f"{name}.creds"
        path.write_text(
            "-----BEGIN NATS USER JWT-----\n"
            f"{user_jwt}\n"
            "------END NATS USER JWT------\n\n"
            "-----BEGIN USER NKEY SEED-----\n"
            f"{user.seed.decode()}\n"
            "------END USER NKEY SEED------\n"
        )
        path.chmod(0o600)
        creds[name] = path
    config = (
        f"operator: {operator_jwt}\n"
        f"system_account: {system.public_key.decode()}\n"
        "resolver: MEMORY\n"
        "resolver_preload: {\n"
        f"  {account.public_key.decode()}: {account_jwt(account, 'LEDGER', True)}\n"
        f"  {system.public_key.decode()}: {account_jwt(system, 'SYS', False)}\n"
        "}\n"
    )
    return Operator(config, creds)
