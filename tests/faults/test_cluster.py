"""Past one machine: a 3-node JetStream cluster on loopback, the stream at 3 replicas. The
stream's leader is SIGKILLed mid-load and started again: nothing lost, nothing twice, and
ingestion carries on through the election."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats

from motionledger.adapters.embedded.nats import NatsProcess
from motionledger.adapters.embedded.processes import free_port
from motionledger.settings import Settings
from tests.support.faults import checkpoint, finish
from tests.support.ledger import ServeProcess
from tests.support.load import Load, Running


def cluster(tmp_path: Path, size: int = 3) -> dict[str, NatsProcess]:
    routes = [free_port() for _ in range(size)]
    nodes: dict[str, NatsProcess] = {}
    for i in range(size):
        name = f"n{i}"
        conf = tmp_path / f"{name}.conf"
        others = ", ".join(f'"nats-route://127.0.0.1:{p}"' for j, p in enumerate(routes) if j != i)
        conf.write_text(
            f'cluster {{\n  name: "ledger"\n  listen: "127.0.0.1:{routes[i]}"\n'
            f"  routes: [{others}]\n}}\n"
        )
        nodes[name] = NatsProcess(tmp_path / name, name=name, args=["-c", str(conf)])
    return nodes


async def jetstream_ready(urls: list[str], timeout: float = 30) -> None:
    """Until the cluster has a JetStream meta leader (account info answers)."""
    client = await nats.connect(urls, connect_timeout=2)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await client.jetstream(timeout=1).account_info()
                return
            except Exception:
                assert time.monotonic() < deadline, "the cluster never elected a meta leader"
                await asyncio.sleep(0.2)
    finally:
        await client.close()


async def stream_leader(urls: list[str], stream: str) -> str:
    client = await nats.connect(urls, connect_timeout=2)
    try:
        for _ in range(100):
            try:
                info = await client.jetstream(timeout=2).stream_info(stream)
                if info.cluster is not None and info.cluster.leader:
                    return info.cluster.leader
            except Exception:
                pass
            await asyncio.sleep(0.1)
    finally:
        await client.close()
    raise AssertionError("the stream has no leader")


async def test_stream_leader_sigkilled_mid_load(settings: Settings, tmp_path: Path) -> None:
    nodes = cluster(tmp_path)
    for node in nodes.values():
        node.launch()
    for node in nodes.values():
        await asyncio.to_thread(node.wait_ready)
    urls = [node.url for node in nodes.values()]
    await jetstream_ready(urls)
    ledger = settings.replace(nats_url=",".join(urls), stream_replicas=3)
    assert ledger.database_url is not None
    serve = ServeProcess(ledger, tmp_path / "serve.log").start()
    try:
        await serve.wait_ready(timeout=60)
        running = Running(Load(urls, ledger.subject_root, rate=300))
        await running.wait_count(300)
        leader = await stream_leader(urls, ledger.stream)
        async with checkpoint(ledger.database_url, ledger.stream) as probe:
            nodes[leader].kill()
            killed_at = time.monotonic()
            before = await probe.get() or 0
            through = await probe.wait_beyond(before + 50, timeout=60)
            print(
                f"leader {leader} SIGKILLed; ingesting through the election after {through:.2f} s"
            )
            await asyncio.sleep(max(0.0, 3 - (time.monotonic() - killed_at)))
            await asyncio.to_thread(nodes[leader].start)
            after = await probe.get() or 0
            await probe.wait_beyond(after + 50, timeout=60)
        new_leader = await stream_leader(urls, ledger.stream)
        print(f"stream leader now {new_leader}")
        await running.wait_count(running.load.count + 300)
        await finish(ledger, running, serve)
    finally:
        serve.kill()
        for node in nodes.values():
            node.stop()
