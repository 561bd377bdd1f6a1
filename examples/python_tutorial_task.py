"""The task script of the Azure Batch Python tutorial (python_tutorial_task.py), without Azure Storage.

It runs on a compute node: it counts the words of a text file and prints the `--numwords` most common
ones, one `word: count` line each, to stdout. Like the tutorial's script it also writes them to
`<name>_OUTPUT<ext>` next to the input (in the task's working directory), where the client can fetch it
through the Batch file API instead of an output storage container. Standard library only.
"""

from __future__ import annotations

import argparse
import collections
import os
import string


def top_words(text: str, count: int) -> list[tuple[str, int]]:
    words = [word.strip(string.punctuation).lower() for word in text.split()]
    return collections.Counter(word for word in words if word).most_common(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--filepath", required=True, help="the text file to process")
    parser.add_argument("--numwords", type=int, required=True, help="how many of the top words to print")
    args = parser.parse_args()

    with open(args.filepath, encoding="utf-8") as f:
        counts = top_words(f.read(), args.numwords)
    lines = [f"{word}: {count}" for word, count in counts]

    root, ext = os.path.splitext(args.filepath)
    with open(f"{root}_OUTPUT{ext}", "w", encoding="utf-8") as out:
        out.write("".join(line + "\n" for line in lines))
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
