"""The cluster code that needs no running cluster: addresses, node views, the choice of a node
and its explanation, the Ray options an instance is created with."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo import launch
from zoo.cluster import node_side
from zoo.cluster.address import CLUSTER_ENV, check_address, cluster_address
from zoo.cluster.nodes import Node, find_node, from_ray
from zoo.cluster.placement import NoNodeFits, Verdict, choose
from zoo.errors import UsageError
from zoo.host import load_host_profile
from zoo.plan import LaunchOptions, Plan
from zoo.resolve import Request

SMOLLM2 = Request(model="smollm2-135m-instruct", engine="llamacpp")


@pytest.mark.parametrize(
    "text", ["10.0.0.5:6379", "head.local:6390", "ray://head:10001", "[::1]:6379", " h:1 "]
)
def test_cluster_addresses_are_host_and_port_with_or_without_ray_scheme(text: str) -> None:
    assert check_address(text) == text.strip()


@pytest.mark.parametrize(
    "text", ["", "head", "head:", "head:0", "head:70000", "ray://:6379", "a b:1", "h:1/x", "ray://"]
)
def test_a_malformed_address_is_one_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="is not a Ray cluster address"):
        check_address(text)


def test_the_flag_wins_over_the_environment_which_wins_over_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "config.toml"
    settings.write_text('cluster = "from-file:6379"\n')
    monkeypatch.setenv("ZOO_CONFIG", str(settings))
    monkeypatch.delenv(CLUSTER_ENV, raising=False)
    assert cluster_address(None) == "from-file:6379"
    monkeypatch.setenv(CLUSTER_ENV, "from-env:6379")
    assert cluster_address(None) == "from-env:6379"
    assert cluster_address("flag:6379") == "flag:6379"
    settings.write_text('cluster = "not an address"\n')
    monkeypatch.delenv(CLUSTER_ENV)
    with pytest.raises(UsageError, match=r"config.toml:1"):
        cluster_address(None)


def test_no_cluster_anywhere_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CLUSTER_ENV, raising=False)
    assert cluster_address(None) is None


def test_a_node_is_named_by_its_label_and_planned_by_its_declared_profile() -> None:
    labels = {node_side.NAME_LABEL: "gpu-a", node_side.PROFILE_LABEL: "h100-80g"}
    host = node_side.node_host(labels)
    assert host.name == "gpu-a" and host.gpus[0].name == "NVIDIA H100 80GB HBM3"
    assert node_side.node_name({}, "box7") == "box7"
    with pytest.raises(UsageError, match=r"zoo\.host-profile=no-such"):
        node_side.node_host({node_side.PROFILE_LABEL: "no-such"})


def test_a_node_plans_for_itself_bound_to_its_cluster_address() -> None:
    labels = {node_side.NAME_LABEL: "gpu-a", node_side.PROFILE_LABEL: "h100-80g"}
    plan = node_side.plan_here(SMOLLM2, LaunchOptions(api_key="k"), labels, "10.1.2.3")
    assert plan.options.host == "10.1.2.3" and plan.options.detach
    assert plan.host_name == "gpu-a" and plan.device == "cuda" and plan.memory.gpus == 1


def test_ray_node_entries_become_nodes() -> None:
    node = from_ray(
        {
            "NodeID": "ab" * 28,
            "Alive": True,
            "NodeManagerAddress": "10.0.0.7",
            "NodeManagerHostname": "box7",
            "Resources": {"CPU": 8.0, "GPU": 2.0, "memory": 3e10, "accelerator_type:A100": 1.0},
            "Labels": {"zoo.node": "big"},
        }
    )
    assert (node.name, node.gpus, node.accelerator, node.memory_bytes) == ("big", 2.0, "A100", 30e9)
    unnamed = from_ray({"NodeID": "cd" * 28, "Alive": False, "NodeManagerHostname": "box8"})
    assert unnamed.name == "box8" and not unnamed.alive and unnamed.accelerator is None


def _node(name: str, node_id: str, models: tuple[str, ...] = ()) -> Node:
    return Node(node_id=node_id, name=name, address="10.0.0.1", alive=True, models=models)


def _plan(profile: str, name: str) -> Plan:
    host = load_host_profile(profile)
    from dataclasses import replace

    return launch.plan(SMOLLM2, LaunchOptions(api_key="k"), host=replace(host, name=name))


def test_the_fastest_plan_wins_and_every_node_is_explained() -> None:
    t4, h100 = _node("t4", "1" * 56), _node("h100", "2" * 56)
    cpu = _node("cpu", "3" * 56)
    verdicts = [
        Verdict(t4, _plan("t4-16g", "t4"), "t4 plan"),
        Verdict(h100, _plan("h100-80g", "h100"), "h100 plan"),
        Verdict(cpu, None, "needs more than 8 GiB of RAM"),
    ]
    placement = choose(verdicts, request="smollm2-135m-instruct")
    assert placement.node is h100 and not placement.pinned
    lines = placement.explain_lines()
    assert [line.split()[:2] for line in lines] == [
        ["t4", "fits"],
        ["h100", "chosen"],
        ["cpu", "no"],
    ]
    assert lines[2].endswith("needs more than 8 GiB of RAM")
    pinned = choose(verdicts, request="smollm2-135m-instruct", pin="t4")
    assert pinned.node is t4 and pinned.pinned and "pinned" in pinned.explain_lines()[0]
    with pytest.raises(NoNodeFits, match="cannot run on node cpu: needs more than 8 GiB"):
        choose(verdicts, request="smollm2-135m-instruct", pin="cpu")
    with pytest.raises(UsageError, match=r"no node 'gpu9' in the cluster \(nodes: cpu, h100, t4\)"):
        choose(verdicts, request="smollm2-135m-instruct", pin="gpu9")


def test_equal_plans_prefer_the_node_that_has_the_files() -> None:
    a, b = _node("a", "1" * 56), _node("b", "2" * 56, models=("smollm2-135m-instruct",))
    plan = _plan("h100-80g", "x")
    placement = choose([Verdict(a, plan, ""), Verdict(b, plan, "")], request="smollm2")
    assert placement.node is b


def test_nothing_fits_names_every_nodes_reason() -> None:
    verdicts = [
        Verdict(_node("a", "1" * 56), None, "needs 140 GiB of GPU memory, has 16"),
        Verdict(_node("b", "2" * 56), None, "the node is not alive"),
    ]
    with pytest.raises(NoNodeFits) as caught:
        choose(verdicts, request="big-model")
    assert str(caught.value) == (
        "big-model fits no node of the cluster: a: needs 140 GiB of GPU memory, has 16; "
        "b: the node is not alive"
    )


def test_nodes_are_found_by_name_id_prefix_or_address() -> None:
    nodes = [_node("a", "abcdef" + "0" * 50), _node("b", "abc999" + "0" * 50)]
    assert find_node(nodes, "b").name == "b"
    assert find_node(nodes, "abcdef").name == "a"
    with pytest.raises(UsageError, match="names 2 nodes"):
        find_node(nodes, "10.0.0.1")


def test_an_instance_reserves_what_its_plan_needs_and_only_a_pinned_one_stays_put() -> None:
    from dataclasses import replace

    from zoo.cluster.actor import LaunchSpec, actor_options

    gpu_plan = _plan("h100-80g", "g")
    gpu_node = Node(
        "9" * 56, "g", "10.0.0.2", True, gpus=1, accelerator="H100", labels=(("zoo.node", "g"),)
    )
    spec = LaunchSpec(gpu_plan, SMOLLM2, gpu_node.node_id, "m@1", "zoo launch", True, False, True)
    options = actor_options(spec, gpu_node)
    # Any GPU kind: where Ray puts it, it plans again for that node's GPUs.
    assert options["num_gpus"] == 1 and "accelerator_type" not in options
    assert options["lifetime"] == "detached" and options["max_restarts"] == -1
    assert options["scheduling_strategy"].soft and "label_selector" not in options
    named = (gpu_node, replace(gpu_node, node_id="7" * 56, labels=(("zoo.node", "h"),)))
    among = actor_options(replace(spec, fits_on=named), gpu_node)
    assert among["label_selector"] == {"zoo.node": "in(g,h)"}  # a rejoining "g" counts
    assert among["scheduling_strategy"]._spill_on_unavailable
    unnamed = (gpu_node, replace(gpu_node, node_id="7" * 56, labels=()))
    by_id = actor_options(replace(spec, fits_on=unnamed), gpu_node)
    assert by_id["label_selector"] == {"ray.io/node-id": f"in({'9' * 56},{'7' * 56})"}
    pinned = actor_options(replace(spec, pinned=True, detached=False), gpu_node)
    assert pinned["label_selector"] == {"zoo.node": "g"} and "lifetime" not in pinned
    cpu_plan = _plan("cpu-24g", "c")
    cpu_spec = replace(spec, plan=cpu_plan)
    cpu = actor_options(cpu_spec, Node("8" * 56, "c", "10.0.0.3", True))
    assert cpu["memory"] == cpu_plan.memory.total_bytes and "num_gpus" not in cpu


def test_a_nodes_cluster_engines_are_recorded_apart_from_its_own_instances(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from zoo.runtime import state

    # Set first, so that monkeypatch puts it back after the test (use_cluster_state changes
    # this process's environment; a variable that was not set would not be restored).
    monkeypatch.setenv("ZOO_STATE_DIR", str(tmp_path / "state"))
    own = state.db_path()
    node_side.use_cluster_state()
    assert state.db_path() == own.parent / node_side.CLUSTER_STATE / own.name
    assert state.logs_dir().parent == own.parent / node_side.CLUSTER_STATE


def test_a_node_that_may_not_download_refuses_files_it_does_not_have(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from zoo.errors import NotFoundError

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    labels = {node_side.NAME_LABEL: "gpu-a", node_side.PROFILE_LABEL: "h100-80g"}
    plan = node_side.plan_here(SMOLLM2, LaunchOptions(api_key="k"), labels, "10.1.2.3")
    with pytest.raises(NotFoundError, match="not downloaded on node gpu-a"):
        node_side.prepare(plan, lambda line: None, download=False)


def test_a_ray_token_that_cannot_be_sent_is_refused_before_ray_sees_it(tmp_path: Path) -> None:
    from zoo.cluster.connect import ClusterError, check_token

    with pytest.raises(ClusterError, match=r"\$RAY_AUTH_TOKEN has a newline at character 3"):
        check_token({"RAY_AUTH_TOKEN": "ab\ncd"})
    with pytest.raises(ClusterError, match="the character ' ' at character 2"):
        check_token({"RAY_AUTH_TOKEN": "a b"})
    check_token({"RAY_AUTH_TOKEN": "0123abcd \n"})  # around it: stripped, as Ray does
    token_file = tmp_path / "token"
    token_file.write_text("ok\x07token")
    with pytest.raises(ClusterError, match=f"{token_file} has the character"):
        check_token({"RAY_AUTH_TOKEN_PATH": str(token_file)})
    check_token({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "none")})  # no token: Ray's to say


def test_a_port_in_other_digits_is_not_a_port() -> None:
    with pytest.raises(UsageError, match="is not a Ray cluster address"):
        check_address("head:\u0666\u0663\u0667\u0669")
