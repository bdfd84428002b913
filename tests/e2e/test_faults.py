"""Fault injection with an oracle: a steady mixed load (applications and decisions, reports, cases, task forces
acknowledging alerts) while faults strike the platform; once it settles, every service holds what the oracle
computed from the accepted requests: no event lost, none applied twice, no alert raised twice, no notice sent
twice to one recipient for one step, and every consumer group has committed up to the end of its topics.

Here the broker is one Apache Kafka node: each service is killed with SIGKILL, the broker is stopped and started
again, and killed with SIGKILL and started again (either way on its data: it keeps what it acknowledged), and
PostgreSQL is restarted. test_cluster_faults.py drives the same load and oracle against a three-node cluster.

Requests whose answer is lost with a cut connection are retried where they are idempotent and taken as "maybe"
where they are not (tests/support/fault_injection.py says which). IOMKI_FAULT_SEED replays a run's plan (plants,
decisions, cases, which fault when); how the services' own timing interleaves with it differs from run to run.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.support.fault_injection import Fault, fault_seed, load_under_faults, plan_plants
from tests.support.oracle import SERVICES
from tests.support.processes import RunningServices

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

LOAD_SECONDS = 60
PLANTS = 24


# ------------------------------------------------------------------------------------------- the plan


def plan_faults(rng: random.Random) -> list[Fault]:
    """Each service killed once, the broker stopped and started once and killed and started once, the database
    restarted once, in a random order, each at a random moment of its own slot of the load."""
    names = [f"kill {service}" for service in SERVICES] + ["restart broker", "kill broker", "restart database"]
    rng.shuffle(names)
    slot = (LOAD_SECONDS - 12) / len(names)
    return [Fault(name, 4 + i * slot + rng.uniform(0, slot / 2), rng.uniform(0.3, 3.0)) for i, name in enumerate(names)]


async def strike(services: RunningServices, fault: Fault) -> None:
    """One fault of the single-node plan: its victim down for the fault's outage, then started again."""
    platform = services.platform
    broker = platform.broker
    assert broker is not None
    action, victim = fault.name.split()
    if victim in SERVICES:
        services.kill(victim)
        fault.struck_at = time.monotonic()
        await asyncio.sleep(fault.outage)
        services.start(victim)
    elif action == "kill":  # the broker, with SIGKILL: what it acknowledged is in its log files, which it recovers
        await asyncio.to_thread(broker.kill, broker.nodes[0])
        fault.struck_at = time.monotonic()
        await asyncio.sleep(fault.outage)
        await asyncio.to_thread(broker.start_node, broker.nodes[0])
    elif victim == "broker":  # a controlled shutdown, and a start on the same data
        await asyncio.to_thread(broker.stop)
        fault.struck_at = time.monotonic()
        await asyncio.sleep(fault.outage)
        await asyncio.to_thread(broker.start)
    else:
        await asyncio.to_thread(platform.stop_database)
        fault.struck_at = time.monotonic()
        await asyncio.sleep(fault.outage)
        await asyncio.to_thread(platform.start_database)


# ------------------------------------------------------------------------------------------- the test


async def test_killed_services_and_restarted_broker_and_database_lose_nothing_and_repeat_nothing():
    seed = fault_seed()
    rng = random.Random(seed)  # noqa: S311 -- a seeded fault plan, repeatable from the seed
    plants = plan_plants(rng, PLANTS)
    await load_under_faults("faults", seed, plants, plan_faults(rng), strike, load_seconds=LOAD_SECONDS,
                            own_database=True)

