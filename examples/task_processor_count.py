"""A task processor: the seed's Task Processor template, in Python.

Counts the words of the file given as the first argument with `wc -w`, after checking it exists
(pre-processing), and writes the count to result.txt (post-processing).
"""

from __future__ import annotations

import sys
from pathlib import Path

from batchyard.jobmanager import TaskProcessor, TaskProcessorError


class WordCount(TaskProcessor):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = Path(path)
        self.output = Path("wc.out")

    def pre(self) -> None:
        if not self.path.exists():
            raise TaskProcessorError(f"input {self.path} is missing")

    def command(self) -> list[str]:
        return ["/bin/bash", "-c", f"wc -w < '{self.path}' > {self.output}"]

    def post(self, exit_code: int) -> None:
        if exit_code == 0:
            Path("result.txt").write_text(self.output.read_text().strip() + "\n")


if __name__ == "__main__":
    sys.exit(WordCount(sys.argv[1]).run())
