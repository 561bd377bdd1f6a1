"""The task script of the Azure Batch Python tutorial (python_tutorial_task.py), with Azure Storage.

It runs on a compute node: it counts the words of a text file, writes the `--numwords` most common
ones to `<name>_OUTPUT<ext>` and uploads that file to the `--storagecontainer` container with the
container SAS it is given (`--sastoken`), as the tutorial's script does. The node has only the
standard library, so the upload is one Put Blob over HTTP instead of the azure-storage SDK.
"""

from __future__ import annotations

import argparse
import collections
import os
import string
import urllib.parse
import urllib.request


def top_words(text: str, count: int) -> list[tuple[str, int]]:
    words = [word.strip(string.punctuation).lower() for word in text.split()]
    return collections.Counter(word for word in words if word).most_common(count)


def upload_blob(endpoint: str, container: str, sas_token: str, path: str) -> None:
    """Put Blob with a container SAS (what BlockBlobService.create_blob_from_path does)."""
    name = urllib.parse.quote(os.path.basename(path))
    url = f"{endpoint.rstrip('/')}/{container}/{name}?{sas_token.lstrip('?')}"
    with open(path, "rb") as f:
        data = f.read()
    request = urllib.request.Request(
        url, data=data, method="PUT", headers={"x-ms-blob-type": "BlockBlob", "x-ms-version": "2021-08-06"}
    )
    with urllib.request.urlopen(request, timeout=60):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--filepath", required=True, help="the text file to process")
    parser.add_argument("--numwords", type=int, required=True, help="how many of the top words to keep")
    parser.add_argument("--storageaccount", required=True, help="the storage account name")
    parser.add_argument("--storagecontainer", required=True, help="the container to upload the output to")
    parser.add_argument("--sastoken", required=True, help="a SAS token with write access to the container")
    parser.add_argument("--blobendpoint", help="the account's blob endpoint (default: Azure's for the account)")
    args = parser.parse_args()

    with open(args.filepath, encoding="utf-8") as f:
        counts = top_words(f.read(), args.numwords)
    root, ext = os.path.splitext(args.filepath)
    output_file = f"{root}_OUTPUT{ext}"
    with open(output_file, "w", encoding="utf-8") as out:
        out.write("".join(f"{word}: {count}\n" for word, count in counts))
    endpoint = args.blobendpoint or f"https://{args.storageaccount}.blob.core.windows.net"
    upload_blob(endpoint, args.storagecontainer, args.sastoken, output_file)
    print(f"uploaded {os.path.basename(output_file)} to container [{args.storagecontainer}]")


if __name__ == "__main__":
    main()
