"""The CLI check of the LM stages (``neurolm pretrain``, ``neurolm tune``): the same command twice against one
Prefect server, then the stage's artifacts."""

from __future__ import annotations

from neurolm.cli import main


def run_twice(args: list[str], capsys, keys: list[str]) -> tuple:
    """``neurolm ARGS`` twice (both exit 0) → (first captured output, second's, the artifacts with ``keys``)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.runtime import prefect_server

    with prefect_server():
        assert main(args) == 0
        first = capsys.readouterr()
        assert main(args) == 0  # the same inputs again
        again = capsys.readouterr()
        with get_client(sync_client=True) as client:
            arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    return first, again, arts


def run_report(arts, key: str, run_folder: str) -> str:
    """The markdown of report artifact ``key`` naming ``run_folder`` (``run-<key>``): the Prefect home is shared
    with other tests' runs."""
    return next(str(a.data) for a in arts if a.key == key and run_folder[4:] in str(a.data))
