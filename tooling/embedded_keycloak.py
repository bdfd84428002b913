"""Keycloak on loopback: the development OpenID Connect provider the tests start.

The server is the one `deploy/keycloak/pom.xml` pins: Maven fetches its distribution from Maven Central and unpacks
it once under the data directory. Each start runs `kc.sh start-dev` on an in-memory database, so every start is
fresh: the realm `iomki` (`deploy/keycloak/development-realm.json`) is created through the admin REST API once the
server answers, by a bootstrap admin client whose secret is made for that start.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from tooling.ports import free_port, port_is_free

KEYCLOAK_ARTIFACTS = Path(__file__).resolve().parent.parent / "deploy" / "keycloak"
POM = KEYCLOAK_ARTIFACTS / "pom.xml"
REALM_FILE = KEYCLOAK_ARTIFACTS / "development-realm.json"
REALM = "iomki"
KEY_PROVIDER = "org.keycloak.keys.KeyProvider"


def keycloak_version() -> str:
    """The Keycloak version the pom pins."""
    found = re.search(r"<keycloak\.version>([^<]+)</keycloak\.version>", POM.read_text())
    if found is None:
        raise RuntimeError(f"{POM} names no keycloak.version")
    return found.group(1)


def development_realm() -> dict[str, Any]:
    realm: dict[str, Any] = json.loads(REALM_FILE.read_text())
    return realm


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"the embedded Keycloak needs {name} (Java 17+ and Maven): `make run` and `make test`"
                           " install Debian's packages when they are missing")
    return path


def _locked(cache_dir: Path) -> IO[str]:
    """An exclusive lock on the distribution, held until the returned file is closed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    lock = open(cache_dir / ".keycloak-distribution.lock", "w")  # closed, and so released, by the caller's `with`
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def distribution(cache_dir: Path) -> Path:
    """Keycloak's home directory, `cache_dir/keycloak-<version>`, fetched and unpacked by Maven on first use."""
    version = keycloak_version()
    # Absolute: Maven resolves a relative output folder against the pom's, and kc.sh runs from another folder.
    cache_dir = cache_dir.resolve()
    home = cache_dir / f"keycloak-{version}"
    with _locked(cache_dir):  # processes starting together fetch once
        if (home / "bin" / "kc.sh").exists():
            return home
        _tool("java")  # the server's, checked before Maven's fetch
        mvn = _tool("mvn")
        partial = cache_dir / f"keycloak-{version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        done = subprocess.run(  # noqa: S603 -- a fixed command; only this checkout's paths vary
            [mvn, "--batch-mode", "--quiet", "--file", str(POM), "dependency:unpack-dependencies",
             f"-Dkeycloak.dist.dir={partial}"],
            capture_output=True, text=True, check=False,
        )
        unpacked = partial / f"keycloak-{version}"
        if done.returncode != 0 or not (unpacked / "bin" / "kc.sh").exists():
            raise RuntimeError(f"Maven could not fetch Keycloak {version}:\n{done.stdout[-4000:]}{done.stderr[-2000:]}")
        os.replace(unpacked, home)  # complete or absent: a fetch cut short is redone
        shutil.rmtree(partial)
        return home


def _signal_group(group: int, signal_number: int) -> bool:
    """Signal a process group; False when no process of it is left."""
    try:
        os.killpg(group, signal_number)
    except ProcessLookupError:
        return False
    return True


@dataclass
class EmbeddedKeycloak:
    """Keycloak in development mode on loopback, with the realm `iomki` created at each start.

    Its log (and the transaction log Quarkus keeps) lives under `directory`; the distribution under `cache_dir`
    (the data directory's parent if None), shared by every instance.
    """

    directory: Path
    port: int | None = None  # a free port when None
    host: str = "127.0.0.1"
    cache_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    admin_client_id: str = "iomki-bootstrap-admin"
    admin_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    def __post_init__(self) -> None:
        self.directory = self.directory.resolve()
        if self.port is None:
            self.port = free_port(self.host)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{REALM}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}/admin/realms/{REALM}"

    @property
    def log_path(self) -> Path:
        return self.directory / "keycloak.log"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 180.0) -> None:
        """Start the server, wait until it answers, and create the realm."""
        if not port_is_free(self.host, self.port or 0):
            raise RuntimeError(f"{self.host}:{self.port} is already in use: stop what listens there")
        cache_dir = self.cache_dir or self.directory.parent
        home = distribution(cache_dir)
        self.directory.mkdir(parents=True, exist_ok=True)
        # The first start-dev augments the distribution for these options (it writes lib/quarkus): one at a time.
        augmented = home / "lib" / "quarkus" / ".iomki-dev-mem"
        with nullcontext() if augmented.exists() else _locked(cache_dir):
            self._launch(home)
            self._wait_ready(timeout)
            augmented.touch()
        self._create_realm()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the server's process group (kc.sh and its JVM), SIGKILL to what is left after `timeout`."""
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the group's id is kc.sh's pid
        _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _signal_group(group, 0) and time.monotonic() < deadline:  # the JVM may outlive kc.sh
            self.process.poll()  # reaps kc.sh, or its pid would keep the group alive as a zombie
            time.sleep(0.1)
        _signal_group(group, signal.SIGKILL)
        self.process.wait(30)

    # -- the realm's signing keys ------------------------------------------------------------------

    def signing_keys(self) -> list[dict[str, Any]]:
        """The realm's keys as the admin API lists them (kid, algorithm, providerId, providerPriority, ...)."""
        keys: list[dict[str, Any]] = self._admin("GET", "/keys").json()["keys"]
        return keys

    def rotate_signing_key(self) -> str:
        """Add an RS256 key above every other, so new tokens carry its `kid`; older keys stay published in the
        JWKS for the tokens they signed. Returns the new kid."""
        priority = 1 + max(int(key["providerPriority"]) for key in self.signing_keys() if key["algorithm"] == "RS256")
        realm_id = self._admin("GET", "").json()["id"]
        created = self._admin("POST", "/components", json={
            "name": f"rsa-rotated-{priority}", "providerId": "rsa-generated", "providerType": KEY_PROVIDER,
            "parentId": realm_id, "config": {"priority": [str(priority)], "algorithm": ["RS256"], "keySize": ["2048"]},
        })
        component = created.headers["location"].rsplit("/", 1)[-1]
        kid: str = next(key["kid"] for key in self.signing_keys() if key["providerId"] == component)
        return kid

    def remove_signing_key(self, kid: str) -> None:
        """Delete the key provider holding `kid`: the key leaves the JWKS, and tokens it signed stop verifying."""
        provider = next(key["providerId"] for key in self.signing_keys() if key["kid"] == kid)
        self._admin("DELETE", f"/components/{provider}")

    # -- internals -------------------------------------------------------------------------------

    def _launch(self, home: Path) -> None:
        env = os.environ | {
            "KC_BOOTSTRAP_ADMIN_CLIENT_ID": self.admin_client_id, "KC_BOOTSTRAP_ADMIN_CLIENT_SECRET": self.admin_secret,
            # C1 alone compiles, as for the embedded Kafka: the start takes about half the CPU time, and a development
            # server never lives long enough to repay C2's compiling.
            "JAVA_OPTS_APPEND": "-XX:TieredStopAtLevel=1",
        }
        with open(self.log_path, "wb") as log_file:  # each start is a fresh server: a fresh log
            self.process = subprocess.Popen(  # noqa: S603 -- a fixed command; only this instance's paths and port vary
                [str(home / "bin" / "kc.sh"), "start-dev", "--db=dev-mem",
                 f"--http-host={self.host}", f"--http-port={self.port}",
                 # Quarkus's transaction log would go to the shared distribution's data/; each instance keeps its own.
                 f"-Dquarkus.transaction-manager.object-store.directory={self.directory / 'transaction-logs'}"],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.directory, env=env,
                start_new_session=True,  # its own process group: stop() signals kc.sh and the JVM together
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.base_url}/realms/master", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if not self.is_running():
                raise RuntimeError(f"Keycloak exited at start; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop(5.0)
                raise RuntimeError(f"Keycloak did not start within {timeout}s; see {self.log_path}")
            time.sleep(0.25)

    def _create_realm(self) -> None:
        self._admin("POST", "", url=f"{self.base_url}/admin/realms", json=development_realm())

    def _admin(self, method: str, path: str, *, url: str | None = None, json: Any = None) -> httpx.Response:
        """One admin REST call, with a fresh token of the bootstrap admin client (they live a minute)."""
        issued = httpx.post(f"{self.base_url}/realms/master/protocol/openid-connect/token", timeout=30.0, data={
            "grant_type": "client_credentials", "client_id": self.admin_client_id, "client_secret": self.admin_secret,
        })
        issued.raise_for_status()
        response = httpx.request(method, url or f"{self.admin_url}{path}", json=json, timeout=30.0,
                                 headers={"Authorization": f"Bearer {issued.json()['access_token']}"})
        if response.is_error:
            raise RuntimeError(f"Keycloak's admin API refused {method} {response.url}: {response.status_code}"
                               f" {response.text[:2000]}")
        return response
