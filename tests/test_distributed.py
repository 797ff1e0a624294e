"""dandelion.distributed on simulated devices and on two real local processes.

JAX fixes its devices when it starts, so every check runs in child processes
(tests/distributed_worker.py): one process with two simulated CPU devices, and two
processes joined over 127.0.0.1 with JAX's CPU collectives (gloo), one device each.
The reference for every distributed run is the single-device training function
(``dandelion.function(..., mode='jax')``) on the same graph, initial state and batches.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import HAS_JAX

pytestmark = pytest.mark.skipif(not HAS_JAX, reason="jax is not installed (pip install 'dandelion[jax]')")

ROOT = Path(__file__).resolve().parent.parent
WORKER = "tests.distributed_worker"
DEVICES_TIMEOUT_S = 300  # a cold run takes ~25 s on a busy 2-core machine
PROCESSES_TIMEOUT_S = 120
# float32 rounding of a different reduction order (a sum split over two devices),
# carried through four Adam steps.
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def child_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")) if p)
    env["JAX_PLATFORMS"] = "cpu"  # simulated CPU devices even where a GPU is present
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


def _tail(path):
    return Path(path).read_text(errors="replace")[-3000:] if Path(path).exists() else ""


@pytest.fixture(scope="module")
def devices_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("devices")
    env = child_env(XLA_FLAGS="--xla_force_host_platform_device_count=2")
    completed = subprocess.run(
        [sys.executable, "-m", WORKER, "devices", str(out)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=DEVICES_TIMEOUT_S,
    )
    if completed.returncode != 0:
        pytest.fail(f"devices worker failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    with np.load(out / "devices.npz") as archive:
        return {key: archive[key] for key in archive.files}


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def processes_run(tmp_path_factory):
    """Two processes of one run; both are stopped, whatever happens, before this returns."""
    out = tmp_path_factory.mktemp("processes")
    port = _free_port()
    children = []
    try:
        for process_id in range(2):
            env = child_env(
                DANDELION_COORDINATOR=f"127.0.0.1:{port}", DANDELION_NUM_PROCESSES="2",
                DANDELION_PROCESS_ID=str(process_id),
            )
            log = open(out / f"log{process_id}.txt", "w")
            children.append((subprocess.Popen(
                [sys.executable, "-m", WORKER, "process", str(out)], cwd=ROOT, env=env, stdout=log, stderr=log,
            ), log))
        deadline = time.monotonic() + PROCESSES_TIMEOUT_S
        while any(child.poll() is None for child, _ in children) and time.monotonic() < deadline:
            if any(child.poll() not in (None, 0) for child, _ in children):
                break  # one failed: the other would wait for it until its own timeout
            time.sleep(0.2)
        codes = [child.poll() for child, _ in children]
    finally:
        for child, log in children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
            log.close()
    if codes != [0, 0]:
        logs = "\n".join(f"--- process {i} (exit {c}):\n{_tail(out / f'log{i}.txt')}" for i, c in enumerate(codes))
        pytest.fail(f"two-process run failed or timed out after {PROCESSES_TIMEOUT_S} s:\n{logs}")
    with np.load(out / "process.npz") as archive:
        results = {key: archive[key] for key in archive.files}
    results["rows1"] = np.load(out / "rows1.npy")
    with np.load(out / "scheduling1.npz") as archive:
        results.update({f"scheduling1/{key}": archive[key] for key in archive.files})
    return results


def _weights(results, prefix):
    return {key.split("/w/", 1)[1]: value for key, value in results.items() if key.startswith(f"{prefix}/w/")}


def assert_same_run(results, prefix, reference):
    np.testing.assert_allclose(results[f"{prefix}/loss"], reference["reference/loss"], **TOLERANCE)
    expected = _weights(reference, "reference")
    got = _weights(results, prefix)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, err_msg=f"{prefix}: {name}", **TOLERANCE)


@pytest.mark.parametrize("run", ["data2", "data1"])
def test_data_parallel_step_equals_the_single_device_step(devices_run, run):
    # Dropout (p=0.3) and BatchNorm are in the graph: equal losses and weights mean equal
    # masks and global batch statistics on the split batch.
    assert_same_run(devices_run, run, devices_run)
    assert not np.array_equal(devices_run[f"{run}/w/W@Dense|fc1"], devices_run["reference/w/W@Dense|fc1"] * 0)


def test_training_changes_the_weights(devices_run):
    # Guards the comparisons above against a step that updates nothing.
    losses = devices_run["data2/loss"]
    assert len(set(np.round(losses, 4))) == len(losses)
    assert int(devices_run["data2/w/adam.t"]) == 4
    assert int(devices_run["data2/w/counter@Dropout|drop"]) == 4


def test_state_stays_on_the_devices_in_donated_buffers(devices_run):
    assert devices_run["data2/donated"].tolist() == [True, True]
    assert not devices_run["data2/kept"]
    assert int(devices_run["data2/devices"]) == 2


def test_sharding_rule_splits_a_weight_and_its_optimizer_state(devices_run):
    shapes = {k.split("/shard_shapes/")[1]: v.tolist() for k, v in devices_run.items() if "/shard_shapes/" in k}
    # The rule names the path "fc1.W".
    assert shapes["fc1.W"] == [[6, 4], [6, 4]]  # (6, 8) split on its output axis
    assert shapes["adam.m@fc1.W"] == [[6, 4], [6, 4]]  # Adam's moment follows its weight
    assert shapes["fc2.W"] == [[8, 3], [8, 3]]  # no rule: replicated
    assert_same_run(devices_run, "model2", devices_run)


def test_sharding_rule_by_variable_name(devices_run):
    assert devices_run["variable_name_rule"].tolist() == ["None", "model"]


@pytest.mark.parametrize("run", ["resume2to1", "resume1to2"])
def test_checkpoint_moves_between_meshes_and_resumes(devices_run, run):
    # Two steps on one mesh, save, every variable overwritten, load, two steps on the other.
    assert_same_run(devices_run, run, devices_run)


def test_jax_step_graph_of_a_float32_model_has_no_float64(devices_run):
    assert devices_run["float64_variables"].tolist() == []


@pytest.mark.parametrize(
    "case, expected",
    [
        ("data_axis", ["data_axis", "['data', 'model']", "'batch'"]),
        ("rule_no_match", ["'fc1.nope'", "matches no parameter", "'fc1.W'", "'adam.m@fc1.W'"]),
        ("rule_axis", ["'tensor'", "['data', 'model']"]),
        ("rule_length", ["'fc2.b'", "length 3", "divisible by 2"]),
        ("batch", ["input 'x'", "3 rows", "multiple of the size 2", "'data'"]),
        ("arity", ["expected 2 inputs", "['x', 'y']", "got 1"]),
    ],
)
def test_bad_input_names_the_argument_and_the_expected_value(devices_run, case, expected):
    message = str(devices_run[f"error/{case}"])
    assert message.startswith(("ValueError", "TypeError")), message
    for part in expected:
        assert part in message, message


def test_two_processes_train_like_one_device(devices_run, processes_run):
    assert int(processes_run["count"]) == 2
    assert processes_run["rows"].tolist() == [0, 4] and processes_run["rows1"].tolist() == [4, 8]
    assert_same_run(processes_run, "processes", devices_run)


def test_communication_threads_run_as_asked_and_the_step_keeps_its_scheduling(processes_run):
    from tests.distributed_worker import COMMUNICATION_NICE

    # process 0 asked for nice COMMUNICATION_NICE, process 1 for SCHED_IDLE; gloo's event
    # loop and the coordination client start inside initialize in both
    asked = {0: (os.SCHED_OTHER, COMMUNICATION_NICE), 1: (os.SCHED_IDLE, None)}
    for process_id, (policy, nice) in asked.items():
        threads = processes_run[f"scheduling{process_id}/threads"]
        assert len(threads) >= 1
        assert threads[:, 0].tolist() == [policy] * len(threads), process_id
        if nice is not None:
            assert threads[:, 1].tolist() == [nice] * len(threads)
        before, after = processes_run[f"scheduling{process_id}/main"].tolist()
        assert after == before, process_id  # the calling thread runs the step: left alone
        assert before[0] == os.SCHED_OTHER and before[1] != COMMUNICATION_NICE


@pytest.mark.parametrize("nice", [-1, 20, 2.5, True, "19"])
def test_initialize_rejects_a_communication_nice_outside_0_to_19(nice):
    from dandelion.distributed import initialize

    # checked before JAX's distributed runtime is touched
    with pytest.raises(ValueError, match=rf"initialize: communication_nice must be an int in \[0, 19\] or None, got {nice!r}"):
        initialize("127.0.0.1:1", 2, 0, communication_nice=nice)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"communication_idle": 1}, "communication_idle must be True or False, got 1"),
        ({"communication_idle": "yes"}, "communication_idle must be True or False, got 'yes'"),
        ({"communication_idle": True, "communication_nice": 19},
         "communication_idle=True and communication_nice=19 both given; expected one of them"),
    ],
)
def test_initialize_rejects_a_bad_communication_idle(kwargs, message):
    from dandelion.distributed import initialize

    with pytest.raises(ValueError, match=re.escape(f"initialize: {message}")):
        initialize("127.0.0.1:1", 2, 0, **kwargs)


def _python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child_env(**env), capture_output=True, text=True, timeout=120
    )


# Importing dandelion (every module) without importing JAX: tests/test_lazy_jax.py.


def test_calling_without_jax_says_how_to_install_it():
    completed = _python(
        "import sys\n"
        "sys.modules['jax'] = None  # as if JAX were not installed\n"
        "from dandelion.distributed import DataParallelStep, initialize, make_mesh\n"
        "for call in (make_mesh, initialize, lambda: DataParallelStep([], [])):\n"
        "    try:\n"
        "        call()\n"
        "    except ImportError as error:\n"
        "        print(error)\n"
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 3, completed.stdout
    for line, where in zip(lines, ("make_mesh", "initialize", "DataParallelStep")):
        assert where in line and "needs JAX" in line and "dandelion[jax]" in line, line


def test_make_mesh_rejects_a_model_axis_that_does_not_divide_the_devices():
    import jax

    from dandelion.distributed import make_mesh

    count = len(jax.devices())
    with pytest.raises(ValueError, match=rf"model must be a positive divisor of the device count {count}, got {count + 1}"):
        make_mesh(model=count + 1)
    mesh = make_mesh()
    assert dict(mesh.shape) == {"data": count, "model": 1}


def test_data_parallel_example_learns(tmp_path):
    # In this process: the mesh holds whatever devices it has (one CPU device here).
    from tests.test_examples import load

    result = load("data_parallel_training").main(steps=60, checkpoint=tmp_path / "run.ckpt", verbose=False)
    losses = result["losses"]
    assert np.isfinite(losses).all()
    assert losses[-10:].mean() < 0.6 * losses[:10].mean(), losses
    assert (tmp_path / "run.ckpt").exists()


def test_jax_compares_float32_products_without_tf32():
    # tests/conftest.py sets it before JAX starts; on NVIDIA GPUs the default is TF32.
    import jax

    assert jax.config.jax_default_matmul_precision == "highest"
