"""Fan a batch of tasks out over a Dask cluster, gathering the outputs and the failures.

    python dask_fanout.py                                  # a LocalCluster on this machine
    python dask_fanout.py --scheduler tcp://host:8786      # the same code on a real cluster

The SDK has no scheduler of its own: when one machine is not enough, an
existing engine fans out. The client is pickled to the workers once
(``scatter(..., broadcast=True)``) as its configuration only, base URL,
timeouts and retry settings, and rebuilds its connection pool there. The key
is never in the pickle: each worker takes it from its own
``INFERENCE_API_KEY``. Every worker shares its one client between its threads.
A failure is an exception the driver gathers (dask also logs it on stderr).
"""

from __future__ import annotations

import argparse
from typing import Any

from _connect import connect
from dask.distributed import Client as DaskClient
from dask.distributed import LocalCluster, as_completed

import inferencesh


def run_one(sdk: inferencesh.Client, config: dict[str, Any]) -> Any:
    """Runs on a worker: the task's output, or its TaskFailed / APIError / ... for the driver to gather."""
    return sdk.run(config, timeout=600).output


def fan_out(
    dask: DaskClient, sdk: inferencesh.Client, configs: list[dict[str, Any]]
) -> tuple[dict[int, Any], dict[int, BaseException]]:
    """Run every config on the cluster; returns (outputs, failures), each by the config's index."""
    remote_sdk = dask.scatter(sdk, broadcast=True)
    futures = {dask.submit(run_one, remote_sdk, config, pure=False): i for i, config in enumerate(configs)}
    outputs: dict[int, Any] = {}
    failures: dict[int, BaseException] = {}
    for future in as_completed(futures):
        index = futures[future]
        if future.status == "error":
            failures[index] = future.exception()
        else:
            outputs[index] = future.result()
    return outputs, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=8, help="how many images to make (default 8)")
    parser.add_argument("--failures", type=int, default=1, help="infsh/fail tasks to add (local server apps)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    args = parser.parse_args()

    configs = [{"app": "infsh/flux-schnell", "input": {"prompt": f"Tile {i}", "steps": 2}} for i in range(args.tasks)]
    configs += [{"app": "infsh/fail", "input": {"message": f"tile {i} is cursed"}} for i in range(args.failures)]
    with connect() as sdk:
        if args.scheduler:
            with DaskClient(args.scheduler) as dask:
                outputs, failures = fan_out(dask, sdk, configs)
        else:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=4, dashboard_address=None)
            with cluster, DaskClient(cluster) as dask:
                outputs, failures = fan_out(dask, sdk, configs)

    print(f"{len(outputs)} completed, {len(failures)} failed")
    for index in sorted(outputs):
        print(f"  [{index}] {configs[index]['input']['prompt']}: {str(outputs[index])[:50]}...")
    for index in sorted(failures):
        error = failures[index]
        print(f"  [{index}] {type(error).__name__}: {error}")


if __name__ == "__main__":
    main()
