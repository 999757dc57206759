"""The demo's closing report: verify's verdict, the latency distribution, what was written."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dynabridge.demo.runner import DemoOptions, DemoResult


def result_text(result: DemoResult, options: DemoOptions) -> str:
    drive = result.drive
    kinds = ", ".join(f"{n} {kind}s" for kind, n in result.kinds.items())
    lines = [
        f"verify: {result.verify_output}",
        "end-to-end latency (DynamoDB write returned -> GET shows the change): "
        + result.latency.text(),
        f"workload: {drive.written} changes ({kinds}) in {drive.elapsed_s:.1f} s "
        f"= {drive.rate:.0f}/s (asked {options.rate:g}/s, {options.threads} writer thread(s))",
    ]
    if not result.drained:
        lines.append(
            "NOT DRAINED: some changes were not visible within the drain timeout (see the logs)"
        )
    lines.append(f"result: {'EQUAL' if result.equal else 'DIFFERENT'}; "
                 f"inspect with: dynabridge status --config {result.config_path}")  # fmt: skip
    return "\n".join(lines)


def result_json(result: DemoResult) -> dict[str, Any]:
    latency = {k: (None if isinstance(v, float) and math.isnan(v) else v)
               for k, v in asdict(result.latency).items()}  # fmt: skip
    return {
        "table": result.table,
        "config": str(result.config_path),
        "equal": result.equal,
        "drained": result.drained,
        "verify": result.verify_output,
        "latency_ms": latency,
        "written": result.drive.written,
        "elapsed_s": round(result.drive.elapsed_s, 3),
        "rate_per_s": round(result.drive.rate, 1),
        "kinds": result.kinds,
        "pipeline_ready_s": round(result.pipeline_ready_s, 2),
        "exit_codes": result.exit_codes,
    }
