"""`batchyard-mpi-launch`: the remote-start program MPI launchers use on local nodes instead of ssh.

MPICH's hydra starts one proxy per host with `<launcher> [-x] <host> <command...>`. Local nodes are
processes on this host, each with a loopback address of its own (127.1.x.y, its `ipAddress`), so
the proxy for a node's address is started here, in that node's name: MPI traffic between ranks
uses the addresses in AZ_BATCH_HOST_LIST. Use it as
`mpiexec -launcher ssh -launcher-exec $BATCHYARD_MPI_LAUNCHER -hosts $AZ_BATCH_HOST_LIST ...`.
Nodes on other hosts need a real remote start (ssh), which this program does not do.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    while args and args[0].startswith("-"):  # ssh options hydra adds (-x: no X11 forwarding)
        args.pop(0)
    if len(args) < 2:
        print("usage: batchyard-mpi-launch [-x] HOST COMMAND...", file=sys.stderr)
        return 255  # what ssh returns for its own errors
    host, command = args[0], " ".join(args[1:])
    os.environ["BATCHYARD_MPI_HOST"] = host
    os.execv("/bin/sh", ["/bin/sh", "-c", command])  # ssh runs the joined words through the login shell


if __name__ == "__main__":
    sys.exit(main())
