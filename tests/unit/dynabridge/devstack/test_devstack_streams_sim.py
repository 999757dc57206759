"""The Streams simulator is an optional service of the dev stack: never started by a plain
``dev up``, started with moto when named."""

from __future__ import annotations

from pathlib import Path

from dynabridge.devstack import stack
from dynabridge.devstack.config import load


def test_the_default_stack_leaves_the_simulator_out() -> None:
    config = load({})
    assert [s.name for s in stack.selected(config, [])] == [
        "kafka", "elasticsearch", "opensearch", "moto",
    ]  # fmt: skip


def test_naming_the_simulator_brings_moto_along() -> None:
    assert stack.with_needs(["streams-sim"]) == ["streams-sim", "moto"]
    assert stack.with_needs(["moto", "streams-sim"]) == ["moto", "streams-sim"]
    assert stack.with_needs(["kafka"]) == ["kafka"]


def test_the_simulator_runs_on_its_own_port_in_front_of_the_configured_moto(tmp_path: Path) -> None:
    config = load({"DYNABRIDGE_DEV_RUN_DIR": str(tmp_path)}, {"moto_port": 5055})
    (service,) = stack.selected(config, ["streams-sim"])
    assert service.endpoint == "http://127.0.0.1:5100"
    assert [claim.port for claim in service.ports] == [5100]
    launch = service.prepare()
    assert launch.argv[1:3] == ["-m", "dynabridge.streamsim"]
    assert launch.argv[launch.argv.index("--moto-endpoint") + 1] == "http://127.0.0.1:5055"
    assert service.pid_path == tmp_path / "streams-sim" / "streams-sim.pid"
