"""`python -m batchyard.agent ...`: how the local provider starts a node's agent (as `batchyard agent ...`)."""

import argparse
import sys

from batchyard.agent.command import add_agent_arguments, run_agent_command

parser = argparse.ArgumentParser(prog="batchyard agent")
add_agent_arguments(parser)
sys.exit(run_agent_command(parser.parse_args()))
