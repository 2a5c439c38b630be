"""The chaos run's figures as a person reads them (bench/chaos.py prints them, then one JSON line)."""

from __future__ import annotations

from typing import Any

__all__ = ["report"]


def report(m: dict[str, Any]) -> None:
    print()
    print(f"tasks submitted        {m['submitted']} of {m['tasks']}  (not submitted: {m['not_submitted']})")
    print(f"succeeded              {m['succeeded']}")
    print(f"failed                 {m['failed']}  {m['failed_errors'] or ''}")
    print(f"cancelled              {m['cancelled']}")
    print(
        f"lost                   {m['lost']}  (unfinished {m['lost_unfinished']}, unknown id {m['lost_unknown_id']})"
    )
    print(
        f"recorded twice         {m['recorded_twice']}  (duplicate ids {m['duplicate_ids']}, extra tasks "
        f"{m['extra_tasks_listed']}, wrong result {m['wrong_result']})"
    )
    print(f"re-run after a failure {m['rerun_after_failure']}  (attempts per task: {m['attempts_histogram']})")
    print(
        f"chaos                  {m['node_kills']} node kills, {m['gateway_kills']} gateway kill "
        f"({m['gateway_down_s']} s to restart)"
    )
    print(
        f"client retries         429: {m['http_429']}, connection errors: {m['connection_errors']}, "
        f"other: {m['other_retries']}, idempotent replays: {m['idempotent_replays']}, rejected: {m['rejected']}"
    )
    print(f"wall time              {m['wall_s']} s  (waiting for the last tasks: {m['finish_wait_s']} s)")
