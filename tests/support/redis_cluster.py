"""A local Redis Cluster for the tests and the benchmarks: 3 primaries + 3 replicas of the system's
redis-server (7.x) on free loopback ports, made with `redis-cli --cluster create`, ready once every node
reports cluster_state:ok and the replicas are attached (polled, never slept on)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from charla.cli.services import free_port

SHARDS = 3


class ClusterError(RuntimeError):
    """The local cluster did not start or did not come back to a healthy state in time."""


def cluster_binaries() -> tuple[str, str] | None:
    """(redis-server, redis-cli) of the system, when both are installed (Debian's `redis-server`)."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    return (server, cli) if server and cli else None


def _poll(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        if time.monotonic() > deadline:
            raise ClusterError(f"not true within {seconds}s: {what}")
        time.sleep(0.05)


@dataclass
class Node:
    """One redis-server of the cluster."""

    port: int
    root: Path
    proc: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=2)

    def info(self, section: str) -> dict[str, str]:
        with self.client() as client:
            return {str(k): str(v) for k, v in client.info(section).items()}

    def cluster_info(self) -> dict[str, str]:
        with self.client() as client:
            info = client.execute_command("CLUSTER INFO")  # redis-py parses it into a dict
        return {str(k): str(v) for k, v in info.items()}


@dataclass
class LocalCluster:
    """`SHARDS` primaries, each with one replica, under `root`; `url` is a startup node for the clients."""

    root: Path
    server: str
    cli: str
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        alive = [node for node in self.nodes if node.proc is not None and node.proc.poll() is None]
        return f"redis://127.0.0.1:{alive[0].port}/0"

    def start(self) -> None:
        """Start 2 × SHARDS nodes, create the cluster, wait until it serves every slot."""
        self.nodes = [Node(free_port(), self.root / f"node-{k}") for k in range(2 * SHARDS)]
        for node in self.nodes:
            self._launch(node)
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run([self.cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=60)
        self.wait_healthy()

    def _launch(self, node: Node) -> None:
        node.root.mkdir(parents=True, exist_ok=True)
        args = [self.server, "--port", str(node.port), "--cluster-port", str(free_port()), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", str(node.root / "nodes.conf"),
                "--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0", "--dir", str(node.root),
                "--appendonly", "yes",
                "--appendfsync", "everysec", "--save", "", "--daemonize", "no", "--logfile",
                str(node.root / "redis.log")]
        node.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        _poll(lambda: bool(node.client().ping()), 15, f"redis-server on port {node.port} answers PING")

    def primaries(self) -> list[Node]:
        return [node for node in self._alive() if node.info("replication").get("role") == "master"]

    def _alive(self) -> list[Node]:
        return [node for node in self.nodes if node.proc is not None and node.proc.poll() is None]

    def wait_healthy(self, seconds: float = 60) -> None:
        """Every live node reports cluster_state:ok, and SHARDS primaries serve the slots."""
        def healthy() -> bool:
            alive = self._alive()
            replicas = [node.info("replication") for node in alive]
            return (all(node.cluster_info().get("cluster_state") == "ok" for node in alive)
                    and len(self.primaries()) == SHARDS
                    and all(r.get("master_link_status") == "up" for r in replicas if r.get("role") == "slave"))

        _poll(healthy, seconds, "cluster_state:ok on every node with all primaries up")

    def kill_primary_of(self, key: str) -> Node:
        """SIGKILL the primary serving `key`; returns it (its replica is promoted by the cluster)."""
        with self.primaries()[0].client() as client:
            slot = int(client.execute_command("CLUSTER KEYSLOT", key))
            shards = client.execute_command("CLUSTER SHARDS")
        for node in self.primaries():
            if _serves(shards, node.port, slot):
                assert node.proc is not None
                node.proc.send_signal(signal.SIGKILL)
                node.proc.wait()
                node.proc = None
                return node
        raise ClusterError(f"no primary found for slot {slot}")

    def wait_promoted(self, seconds: float = 60) -> None:
        """After a primary died: its replica took over every slot (cluster_state:ok again)."""
        def promoted() -> bool:
            alive = self._alive()
            return (len([n for n in alive if n.info("replication").get("role") == "master"]) == SHARDS
                    and all(node.cluster_info().get("cluster_state") == "ok" for node in alive))

        _poll(promoted, seconds, "the dead primary's replica promoted and cluster_state:ok")

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
                try:
                    node.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()
            node.proc = None


def _serves(shards: Any, port: int, slot: int) -> bool:
    """Whether CLUSTER SHARDS says the primary on `port` serves `slot`."""
    for shard in shards if isinstance(shards, list) else []:
        info = _pairs(shard)
        ranges = [int(v) for v in info.get("slots", [])]
        nodes = [_pairs(n) for n in info.get("nodes", [])]
        primary = [n for n in nodes if _text(n.get("role")) == "master" and int(n.get("port", 0)) == port]
        if primary and any(lo <= slot <= hi for lo, hi in zip(ranges[::2], ranges[1::2], strict=True)):
            return True
    return False


def _pairs(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {_text(k): v for k, v in value.items()}
    items = list(value) if isinstance(value, list) else []
    return {_text(k): v for k, v in zip(items[::2], items[1::2], strict=True)}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.contextmanager
def local_cluster(root: Path) -> Iterator[LocalCluster]:
    """A running local cluster, stopped on exit; raises ClusterError when redis-server/redis-cli are missing."""
    binaries = cluster_binaries()
    if binaries is None:
        raise ClusterError("redis-server and redis-cli are needed (apt-get install redis-server)")
    cluster = LocalCluster(root, *binaries)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
