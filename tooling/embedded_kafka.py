"""Apache Kafka on loopback, in KRaft mode, for `make run`, the tests and the bench.

The broker is the one `deploy/kafka/pom.xml` pins: Maven fetches it from Maven Central into its local repository
on first use, and the classpath it resolved is kept under the data directory. A node is one JVM that is both
broker and controller; a cluster is several such nodes voting in one quorum, as the fault tests need.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tooling.ports import free_ports, port_is_free

KAFKA_ARTIFACTS = Path(__file__).resolve().parent.parent / "deploy" / "kafka"
POM = KAFKA_ARTIFACTS / "pom.xml"
LOG_CONFIG = KAFKA_ARTIFACTS / "log4j2.properties"
EMBEDDED_CONTROLLER_PORT = 9093
STARTED_LINE = b"Kafka Server started"  # what KafkaRaftServer logs once the node serves clients


def kafka_version() -> str:
    """The broker version the pom pins (and deploy/ names)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if found is None:
        raise RuntimeError(f"{POM} names no kafka.version")
    return found.group(1)


def _tool(name: str) -> str:
    """The path of `java` or `mvn` on PATH, where `make` installs them."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"the embedded Kafka broker needs {name} (Java 17+ and Maven): `make run` and"
                           " `make test` install Debian's packages when they are missing")
    return path


def broker_classpath(cache_dir: Path) -> str:
    """The broker's jars, fetched by Maven on first use; later calls read the classpath kept in `cache_dir`."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    # Absolute: Maven reads a relative output file against the pom's folder, not this process's.
    kept = cache_dir.resolve() / f"kafka-classpath-{digest}.txt"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".kafka-classpath.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # processes starting together fetch once
        if kept.exists() and all(Path(jar).exists() for jar in kept.read_text().split(os.pathsep)):
            return kept.read_text()
        _tool("java")  # the broker's, checked before Maven's long fetch
        mvn = _tool("mvn")
        resolving = kept.with_suffix(".partial")
        done = subprocess.run(  # noqa: S603 -- a fixed command; only this checkout's paths vary
            [mvn, "--batch-mode", "--quiet", "--file", str(POM), "dependency:build-classpath",
             f"-Dmdep.outputFile={resolving}"],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0 or not resolving.exists():
            raise RuntimeError(f"Maven could not fetch Apache Kafka {kafka_version()}:\n{done.stdout[-4000:]}"
                               f"{done.stderr[-2000:]}")
        os.replace(resolving, kept)
        return kept.read_text()


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, as `kafka-storage random-uuid`, and
    like it never starting with "-", which the storage tool would read as an option."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()).startswith("-"):
        pass
    return cluster_id


@dataclass
class KafkaNode:
    """One JVM that is broker and controller, its data and log under `directory`."""

    node_id: int
    host: str
    port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    log_offset: int = 0  # where this start's lines begin in server.log

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"node {self.node_id} was never started")
        return self.process.pid

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class EmbeddedKafka:
    """Apache Kafka on loopback: one node by default, or a cluster of `size` nodes (replication up to `size`).

    Its data lives under `directory` and survives a stop: a node is formatted only on its first start.
    """

    directory: Path
    size: int = 1
    host: str = "127.0.0.1"
    ports: list[tuple[int, int]] | None = None  # (client, controller) per node; free ports when None
    heap: str = "512m"
    cache_dir: Path | None = None  # where the resolved classpath is kept; the data directory's parent if None
    nodes: list[KafkaNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory = self.directory.resolve()  # each node runs in its own directory
        if self.ports is None:
            chosen = free_ports(2 * self.size, self.host)
            self.ports = list(zip(chosen[::2], chosen[1::2], strict=True))
        ports = self.ports
        if len(ports) != self.size:
            raise ValueError(f"one (client, controller) port pair per node: {len(ports)} pairs for {self.size} nodes")
        self.nodes = [KafkaNode(number + 1, self.host, port, controller, self.directory / f"node-{number + 1}")
                      for number, (port, controller) in enumerate(ports)]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def replication_factor(self) -> int:
        return min(3, self.size)

    @property
    def min_insync_replicas(self) -> int:
        return 1 if self.replication_factor == 1 else self.replication_factor - 1

    def start(self, timeout: float = 90.0) -> None:
        """Format new nodes, start every node, and wait until each serves clients."""
        for node in self.nodes:
            for port in (node.port, node.controller_port):
                if not port_is_free(self.host, port):
                    raise RuntimeError(f"{self.host}:{port} is already in use: stop what listens there, or set"
                                       " KAFKA_BOOTSTRAP to use an existing Kafka")
        classpath = self._classpath()
        self._format(classpath)
        for node in self.nodes:
            self._launch(node, classpath)
        self.wait_started(self.nodes, timeout)

    def stop(self, timeout: float = 30.0, nodes: list[KafkaNode] | None = None) -> None:
        """Shut these nodes (every node by default) down in order (controlled shutdown), killing any that does not
        within `timeout`."""
        nodes = self.nodes if nodes is None else nodes
        for node in nodes:
            if node.process is not None and node.is_running():
                os.kill(node.pid, signal.SIGCONT)  # a paused node could not act on the SIGTERM
                node.process.send_signal(signal.SIGTERM)
        for node in nodes:
            self._reap(node, timeout)

    def kill(self, node: KafkaNode) -> None:
        """SIGKILL: the node loses what it had not written to its log files, as in a crash."""
        if node.process is not None and node.is_running():
            node.process.kill()
            node.process.wait(30)

    def pause(self, node: KafkaNode) -> None:
        os.kill(node.pid, signal.SIGSTOP)

    def resume(self, node: KafkaNode) -> None:
        os.kill(node.pid, signal.SIGCONT)

    def restart(self, node: KafkaNode, timeout: float = 90.0) -> None:
        """Stop one node cleanly (if running) and start it again on its data."""
        self.stop(60.0, [node])
        self.start_node(node, timeout)

    def start_node(self, node: KafkaNode, timeout: float = 90.0) -> None:
        self._launch(node, self._classpath())
        self.wait_started([node], timeout)

    def wait_started(self, nodes: list[KafkaNode], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for node in nodes:
            while not self._logged_start(node):
                if not node.is_running():
                    raise RuntimeError(f"Kafka node {node.node_id} exited at start; see {node.log_path}")
                if time.monotonic() > deadline:
                    self.stop(5.0, nodes)
                    raise RuntimeError(f"Kafka node {node.node_id} did not start within {timeout}s;"
                                       f" see {node.log_path}")
                time.sleep(0.1)

    # -- internals -------------------------------------------------------------------------------

    def _classpath(self) -> str:
        return broker_classpath(self.cache_dir or self.directory.parent)

    def _properties(self, node: KafkaNode) -> str:
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes)
        replicas, in_sync = self.replication_factor, self.min_insync_replicas
        settings = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{node.host}:{node.port},CONTROLLER://{node.host}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{node.host}:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": node.directory / "data",
            # Topics are created explicitly with their partition counts and replication, never by a first use.
            "auto.create.topics.enable": "false",
            "default.replication.factor": replicas,
            "min.insync.replicas": in_sync,
            "unclean.leader.election.enable": "false",
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": in_sync,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": in_sync,
            # A consumer group forms at once rather than waiting for more members; few threads on two cores.
            "group.initial.rebalance.delay.ms": 0,
            "num.network.threads": 1,
            "num.io.threads": 2,
            "log.retention.hours": 168,
        }
        return "".join(f"{name}={value}\n" for name, value in settings.items())

    def _format(self, classpath: str) -> None:
        new = [node for node in self.nodes if not (node.directory / "data" / "meta.properties").exists()]
        if not new:
            return
        cluster_id = self._cluster_id()
        for node in new:
            node.directory.mkdir(parents=True, exist_ok=True)
            config = node.directory / "server.properties"
            config.write_text(self._properties(node))
            done = subprocess.run(  # noqa: S603 -- a fixed command; only this cluster's paths and id vary
                [_tool("java"), f"-Dlog4j2.configurationFile={LOG_CONFIG}", "-cp", classpath, "kafka.tools.StorageTool",
                 "format", "--cluster-id", cluster_id, "--config", str(config), "--ignore-formatted"],
                capture_output=True, text=True, check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"formatting Kafka node {node.node_id} failed:\n{done.stdout}{done.stderr}")

    def _cluster_id(self) -> str:
        """The id of the nodes already formatted, so that a node added later joins their cluster."""
        for node in self.nodes:
            meta = node.directory / "data" / "meta.properties"
            if meta.exists():
                found = re.search(r"^cluster\.id=(\S+)$", meta.read_text(), re.MULTILINE)
                if found:
                    return found.group(1)
        return new_cluster_id()

    def _launch(self, node: KafkaNode, classpath: str) -> None:
        config = node.directory / "server.properties"
        config.write_text(self._properties(node))  # ports may differ from the last start's
        node.log_offset = node.log_path.stat().st_size if node.log_path.exists() else 0
        with open(node.log_path, "ab") as log_file:
            node.process = subprocess.Popen(  # noqa: S603 -- a fixed command; only this cluster's paths and heap vary
                # C1 alone compiles the broker's code: C2's compiling took as much CPU as the broker's own work for
                # minutes after each start, and a test's broker never lives long enough to repay it.
                [_tool("java"), f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                 "-XX:TieredStopAtLevel=1",
                 "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG_CONFIG}",
                 "-cp", classpath, "kafka.Kafka", str(config)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=node.directory,
                start_new_session=True,  # Ctrl-C in a terminal reaches the launcher, which stops the broker in order
            )

    @staticmethod
    def _logged_start(node: KafkaNode) -> bool:
        if not node.log_path.exists():
            return False
        with open(node.log_path, "rb") as log:
            log.seek(node.log_offset)
            return STARTED_LINE in log.read()

    @staticmethod
    def _reap(node: KafkaNode, timeout: float) -> None:
        if node.process is None or node.process.poll() is not None:
            return
        try:
            node.process.wait(timeout)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(30)
