"""`python -m batchyard.agent ...`: how the local provider starts a node's agent."""

import sys

from batchyard.cli.main import main

sys.exit(main(["agent", *sys.argv[1:]]))
