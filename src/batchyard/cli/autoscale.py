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
import sys
from pathlib import Path
from typing import Any, TextIO

from batchyard.cli.client import CommandError, add_connection_options, call
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
    add_connection_options(evaluate)
    evaluate.add_argument("--pool", required=True, help="the pool whose samples the formula reads")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--formula", help="the formula text")
    source.add_argument("--file", type=Path, help="a file with the formula ('-' for standard input)")
    evaluate.add_argument("--json", action="store_true", help="print the service's answer as JSON")


def run_autoscale_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    if args.formula is not None:
        formula = args.formula
    elif str(args.file) == "-":
        formula = sys.stdin.read()
    else:
        formula = args.file.read_text()
    try:
        data = call(args, "POST", f"/_batchyard/pools/{args.pool}/evaluateautoscale", {"autoScaleFormula": formula})
    except CommandError as exc:
        if exc.status is None:
            print(f"batchyard: {exc}", file=sys.stderr)
        elif args.json:
            print(json.dumps(exc.body, indent=2), file=out)
        else:
            error = exc.body if isinstance(exc.body, dict) else {}
            message = (error.get("message") or {}).get("value", "")
            print(f"error {error.get('code', exc.status)}: {message}", file=out)
            for item in error.get("values", []):
                print(f"  {item.get('value')}", file=out)
        return 2
    if args.json:
        print(json.dumps(data, indent=2), file=out)
    else:
        print_evaluation(data, out)
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
        print(
            f"  {sample['name']}: {sample['readable']} readable of {sample['recorded']}, latest {sample['latest']}",
            file=out,
        )
