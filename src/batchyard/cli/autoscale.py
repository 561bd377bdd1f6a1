"""Autoscale on the command line: the serve options, and `batchyard autoscale evaluate`.

    batchyard autoscale evaluate --url http://127.0.0.1:8650 --pool mypool --formula '$TargetDedicatedNodes = 1;'
    batchyard autoscale evaluate --url ... --pool mypool --file formula.txt [--json]

evaluates a formula against the pool's live samples (autoscale need not be enabled; nothing changes)
and prints every statement's value, every variable with its type, the error if any and the samples
the service holds. The account comes from --account-name/--account-key or BATCHYARD_ACCOUNT_NAME /
BATCHYARD_ACCOUNT_KEY, else the development account.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from batchyard.service.config import AutoscaleTiming


def add_autoscale_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--autoscale-sample-period",
        type=float,
        default=AutoscaleTiming.sample_period,
        help="seconds between autoscale metric samples (Azure: 30)",
    )
    serve.add_argument(
        "--autoscale-sample-delay",
        type=float,
        default=None,
        help="seconds before a sample is readable by formulas (default: two sample periods)",
    )
    serve.add_argument(
        "--autoscale-min-interval",
        type=float,
        default=AutoscaleTiming.min_interval,
        help="shortest autoScaleEvaluationInterval accepted, in seconds (the contract: 300); for development",
    )


def autoscale_timing(args: argparse.Namespace) -> AutoscaleTiming:
    return AutoscaleTiming(
        sample_period=max(0.1, args.autoscale_sample_period),
        sample_delay=args.autoscale_sample_delay,
        min_interval=max(0.1, args.autoscale_min_interval),
    )


def add_autoscale_commands(commands: Any) -> None:
    command = commands.add_parser("autoscale", help="develop autoscale formulas against a running service")
    actions = command.add_subparsers(dest="autoscale_command", required=True)
    evaluate = actions.add_parser("evaluate", help="evaluate a formula against a pool's live samples")
    evaluate.add_argument("--url", default=os.environ.get("BATCHYARD_URL", "http://127.0.0.1:8650"))
    evaluate.add_argument("--pool", required=True)
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--formula", help="the formula text")
    source.add_argument("--file", type=Path, help="a file with the formula ('-' for standard input)")
    evaluate.add_argument("--account-name")
    evaluate.add_argument("--account-key")
    evaluate.add_argument("--json", action="store_true", help="print the service's answer as JSON")


def run_autoscale_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    import httpx

    from batchyard.service.auth import format_ocp_date, sign_request
    from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

    if args.formula is not None:
        formula = args.formula
    elif str(args.file) == "-":
        formula = sys.stdin.read()
    else:
        formula = args.file.read_text()
    name = args.account_name or os.environ.get("BATCHYARD_ACCOUNT_NAME") or DEV_ACCOUNT_NAME
    key = args.account_key or os.environ.get("BATCHYARD_ACCOUNT_KEY") or DEV_ACCOUNT_KEY
    url = f"{args.url.rstrip('/')}/_batchyard/pools/{args.pool}/evaluateautoscale?api-version=2025-06-01.21.0"
    body = json.dumps({"autoScaleFormula": formula}).encode()
    headers = {"ocp-date": format_ocp_date(), "content-type": "application/json", "content-length": str(len(body))}
    headers["Authorization"] = sign_request(name, key, "POST", url, headers)
    try:
        answer = httpx.post(url, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        print(f"batchyard: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    data = answer.json() if answer.content else {}
    if args.json:
        print(json.dumps(data, indent=2), file=out)
    elif answer.status_code != 200:
        detail = {item.get("key"): item.get("value") for item in data.get("values", [])}
        message = (data.get("message") or {}).get("value", "")
        print(f"error {data.get('code', answer.status_code)}: {message}", file=out)
        for value in detail.values():
            print(f"  {value}", file=out)
    else:
        print_evaluation(data, out)
    if answer.status_code != 200:
        return 2
    return 1 if data.get("error") else 0


def print_evaluation(data: dict[str, Any], out: TextIO) -> None:
    print(f"evaluated at {data['timestamp']}", file=out)
    print("statements:", file=out)
    for step in data.get("statements", []):
        value = "(not reached)" if step["value"] is None else step["value"]
        print(f"  {step['index']:>3}  line {step['line']}: {step['text']}\n       = {value}", file=out)
    print("variables:", file=out)
    for var in data.get("variables", []):
        print(f"  {var['name']} = {var['value']}  ({var['type']})", file=out)
    error = data.get("error")
    if error:
        print(f"error {error['code']}: {error['message']}", file=out)
        for value in error.get("values", []):
            print(f"  {value['name']}: {value['value']}", file=out)
    samples = data.get("samples", [])
    print(
        f"samples (every {data.get('samplePeriodSeconds')} s, readable after {data.get('sampleDelaySeconds')} s):",
        file=out,
    )
    for sample in samples:
        print(f"  {sample['name']}: {sample['readable']} readable of {sample['recorded']}, "
              f"latest {sample['latest']}", file=out)
