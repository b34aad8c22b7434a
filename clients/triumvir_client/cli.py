"""The `triumvir` command: run servers, start a local cluster, and talk to a cluster.

Keys and values on the command line are UTF-8 text. Failures print
`error: <CODE>: <message>` on stderr and exit with status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from triumvir.common.cpus import allowed_cpus
from triumvir.consensus import config as replica_config
from triumvir.v1 import cluster_pb2
from triumvir_client import errors, launcher, txnspec
from triumvir_client.cli_output import OUTPUTS, Printer
from triumvir_client.client import Client
from triumvir_client.routing import DEFAULT_TIMEOUT_S, parse_endpoints

ENDPOINTS_ENV = "TRIUMVIR_ENDPOINTS"
DEFAULT_ENDPOINTS = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

COMMANDS_HELP = """\
commands:
  serve consensus [flags]        run one consensus replica
  up [--engine raft|paxos] [--data-dir DIR] [--base-port PORT] [--replicas N]
     [--no-spread-cpus]          start a local group as child processes; Ctrl-C stops it
  kv put KEY VALUE [--lease ID]  write a key
  kv get KEY [--prefix] [--range-end END] [--rev R] [--serializable] [--limit N]
             [--keys-only] [--count-only]
  kv del KEY [--prefix] [--range-end END]
  kv txn [--file FILE]           compare-then-ops transaction (see `kv txn --help`)
  kv watch KEY [--prefix] [--rev R]
                                 print changes until Ctrl-C
  kv compact REV                 discard history before REV
  lease grant TTL | revoke ID | ttl ID [--keys] | list
  cluster status | members | add PEER_URL [--name N] | promote ID | remove ID | transfer ID
  snapshot save FILE             stream a verified backup of one member
  snapshot restore FILE --data-dir DIR --peers ID=HOST:PORT,...
                                 seed a new member's empty data directory from a backup

Client options (--endpoints, --timeout, --output) go before or after the command.
Keys and values are UTF-8 text. Errors print "error: CODE: message" and exit 1.
"""

Handler = Callable[[argparse.Namespace, Client, Printer], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "up":
            return _up(args)
        if args.command == "snapshot" and args.action == "restore":
            return _snapshot_restore(args)
        return _with_client(args)
    except errors.ClientError as exc:
        return _fail(exc.code.name, exc.message)
    except ValueError as exc:  # bad endpoints, bad spec, bad replica config
        return _fail("INVALID_ARGUMENT", str(exc))
    except OSError as exc:
        return _fail("UNAVAILABLE", str(exc))
    except KeyboardInterrupt:
        return 130  # the shell's convention for "stopped by SIGINT"


def _fail(code: str, message: str) -> int:
    sys.stderr.write(f"error: {code}: {message}\n")
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triumvir",
        description="Consensus, locks and transactions as gRPC services.",
        epilog=COMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_client_options(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run a triumvir server")
    servers = serve.add_subparsers(dest="server", required=True, metavar="SERVER")
    consensus = servers.add_parser("consensus", help="one replica of the consensus group")
    replica_config.add_arguments(consensus)

    up = commands.add_parser("up", help="start a local consensus group and wait (Ctrl-C stops)")
    up.add_argument("--engine", choices=replica_config.ENGINES, default="raft")
    up.add_argument("--data-dir", default="./.data", help="replica n keeps its data in DIR/n")
    up.add_argument("--base-port", type=int, default=7001, help="replica n listens on PORT+n-1")
    up.add_argument("--replicas", type=int, default=3)
    up.add_argument(
        "--spread-cpus",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep each replica's threads on one CPU, the replicas on different CPUs in turn",
    )

    common = argparse.ArgumentParser(add_help=False)
    _add_client_options(common, top_level=False)
    _add_kv_commands(commands, common)
    _add_lease_commands(commands, common)
    _add_cluster_commands(commands, common)
    snapshot = commands.add_parser("snapshot", help="backups")
    snapshot_commands = snapshot.add_subparsers(dest="action", required=True, metavar="ACTION")
    save = snapshot_commands.add_parser(
        "save", parents=[common], help="stream a verified backup of one member to FILE"
    )
    save.add_argument("file")
    save.set_defaults(handler=_snapshot_save)
    restore = snapshot_commands.add_parser(
        "restore",
        help="seed a new member's data directory from a backup (once per member, offline)",
        description="Writes the backup FILE into the empty directory DIR as the starting "
        "state of a new group whose members are --peers. Run it for every member, each "
        "with its own DIR and the same --peers, then start each member with its DIR and "
        "those --peers.",
    )
    restore.add_argument("file")
    restore.add_argument("--data-dir", required=True, help="the new member's (empty) directory")
    restore.add_argument(
        "--peers", required=True, help="the new group's members, ID=HOST:PORT,... (all of them)"
    )
    return parser


def _add_client_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    # Accepted before the command and after it. Only the top level holds defaults: the
    # command's copies are suppressed when absent, so they never overwrite an early value.
    def default(value: object) -> object:
        return value if top_level else argparse.SUPPRESS

    parser.add_argument(
        "--endpoints",
        default=default(None),
        help=f"comma-separated HOST:PORT of members [{ENDPOINTS_ENV}; default {DEFAULT_ENDPOINTS}]",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=default(DEFAULT_TIMEOUT_S),
        help="seconds per command, retries included",
    )
    parser.add_argument(
        "--output",
        choices=OUTPUTS,
        default=default("text"),
        help="text (default), or json (Protobuf JSON mapping: bytes as base64)",
    )


def _add_kv_commands(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    kv = commands.add_parser("kv", help="read and write keys")
    actions = kv.add_subparsers(dest="action", required=True, metavar="ACTION")

    put = actions.add_parser("put", parents=[common], help="write KEY=VALUE")
    put.add_argument("key")
    put.add_argument("value")
    put.add_argument("--lease", type=int, default=0, help="attach the key to lease ID")
    put.add_argument("--prev-kv", action="store_true", help="also print the previous value")
    put.set_defaults(handler=_kv_put)

    get = actions.add_parser("get", parents=[common], help="read a key, a prefix or a range")
    get.add_argument("key")
    _add_range_options(get)
    get.add_argument("--rev", type=int, default=0, help="read at this revision (0: latest)")
    get.add_argument("--serializable", action="store_true", help="answer from local state")
    get.add_argument("--limit", type=int, default=0, help="at most N keys (0: no limit)")
    get.add_argument("--keys-only", action="store_true")
    get.add_argument("--count-only", action="store_true")
    get.set_defaults(handler=_kv_get)

    delete = actions.add_parser("del", parents=[common], help="delete a key, prefix or range")
    delete.add_argument("key")
    _add_range_options(delete)
    delete.add_argument("--prev-kv", action="store_true", help="also print deleted keys")
    delete.set_defaults(handler=_kv_del)

    txn = actions.add_parser(
        "txn",
        parents=[common],
        help="run a transaction read from stdin or --file",
        description="Runs one atomic compare-then-ops transaction.",
        epilog=txnspec.SPEC_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    txn.add_argument("--file", help="read the spec from FILE instead of stdin")
    txn.set_defaults(handler=_kv_txn)

    watch = actions.add_parser("watch", parents=[common], help="print changes until Ctrl-C")
    watch.add_argument("key")
    watch.add_argument("--prefix", action="store_true")
    watch.add_argument("--rev", type=int, default=0, help="start at this revision (0: next)")
    watch.add_argument("--prev-kv", action="store_true")
    watch.set_defaults(handler=_kv_watch)

    compact = actions.add_parser("compact", parents=[common], help="discard history before REV")
    compact.add_argument("revision", type=int)
    compact.set_defaults(handler=_kv_compact)


def _add_range_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--prefix", action="store_true", help="every key starting with KEY")
    group.add_argument("--range-end", default="", help="every key in [KEY, END)")


def _add_lease_commands(
    commands: argparse._SubParsersAction, common: argparse.ArgumentParser
) -> None:
    lease = commands.add_parser("lease", help="grant, inspect and revoke leases")
    actions = lease.add_subparsers(dest="action", required=True, metavar="ACTION")
    grant = actions.add_parser("grant", parents=[common], help="create a lease of TTL seconds")
    grant.add_argument("ttl", type=int)
    grant.set_defaults(handler=_lease_grant)
    revoke = actions.add_parser("revoke", parents=[common], help="end a lease, delete its keys")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(handler=_lease_revoke)
    ttl = actions.add_parser("ttl", parents=[common], help="time left on a lease")
    ttl.add_argument("id", type=int)
    ttl.add_argument("--keys", action="store_true", help="also list attached keys")
    ttl.set_defaults(handler=_lease_ttl)
    listing = actions.add_parser("list", parents=[common], help="every live lease")
    listing.set_defaults(handler=_lease_list)


def _add_cluster_commands(
    commands: argparse._SubParsersAction, common: argparse.ArgumentParser
) -> None:
    cluster = commands.add_parser("cluster", help="members and leadership")
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", parents=[common], help="status of every endpoint")
    status.set_defaults(handler=_cluster_status)
    members = actions.add_parser("members", parents=[common], help="list members")
    members.set_defaults(handler=_cluster_members)
    add = actions.add_parser("add", parents=[common], help="add a member as a learner")
    add.add_argument("peer_url")
    add.add_argument("--name", default="")
    add.add_argument(
        "--id",
        type=int,
        default=0,
        dest="member_id",
        help="the id the new replica was started with (default: highest member id + 1)",
    )
    add.set_defaults(handler=_cluster_add)
    for name, help_text, handler in (
        ("promote", "make learner ID a voter", _cluster_promote),
        ("remove", "remove member ID", _cluster_remove),
        ("transfer", "hand leadership to member ID", _cluster_transfer),
    ):
        action = actions.add_parser(name, parents=[common], help=help_text)
        action.add_argument("id", type=int)
        action.set_defaults(handler=handler)


# -- running commands ------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    # Imported here so client commands never load the server stack.
    from triumvir.consensus import server

    server.serve(replica_config.from_arguments(args))
    return 0


def _up(args: argparse.Namespace) -> int:
    specs = launcher.replica_specs(
        engine=args.engine,
        data_dir=args.data_dir,
        base_port=args.base_port,
        replicas=args.replicas,
        cpus=allowed_cpus() if args.spread_cpus else (),
    )
    return launcher.run(specs, sys.stdout, sys.stderr)


def _with_client(args: argparse.Namespace) -> int:
    endpoints = parse_endpoints(
        args.endpoints or os.environ.get(ENDPOINTS_ENV) or DEFAULT_ENDPOINTS
    )
    printer = Printer(args.output, sys.stdout)
    handler: Handler = args.handler
    with Client(endpoints, timeout_s=args.timeout) as client:
        return handler(args, client, printer)


def _kv_put(args: argparse.Namespace, client: Client, out: Printer) -> int:
    out.put_response(client.put(args.key, args.value, lease=args.lease, prev_kv=args.prev_kv))
    return 0


def _kv_get(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.get(
        args.key,
        prefix=args.prefix,
        range_end=args.range_end,
        revision=args.rev,
        serializable=args.serializable,
        limit=args.limit,
        keys_only=args.keys_only,
        count_only=args.count_only,
    )
    out.range_response(response, keys_only=args.keys_only, count_only=args.count_only)
    return 0


def _kv_del(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.delete(
        args.key, prefix=args.prefix, range_end=args.range_end, prev_kv=args.prev_kv
    )
    out.delete_response(response)
    return 0


def _kv_txn(args: argparse.Namespace, client: Client, out: Printer) -> int:
    text = _read_spec(args.file, sys.stdin)
    spec = txnspec.parse(text)
    out.txn_response(client.txn(spec.compare, spec.success, spec.failure))
    return 0


def _read_spec(path: str | None, stdin: TextIO) -> str:
    if path is None:
        return stdin.read()
    with open(path, encoding="utf-8") as spec_file:
        return spec_file.read()


def _kv_watch(args: argparse.Namespace, client: Client, out: Printer) -> int:
    watch = client.watch(
        args.key, prefix=args.prefix, start_revision=args.rev, prev_kv=args.prev_kv
    )
    try:
        with watch:
            for event in watch:
                out.event(event)
    except KeyboardInterrupt:
        pass
    return 0


def _kv_compact(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.compact(args.revision)
    if out.json:
        out.message(response)
    else:
        out.line(f"compacted history before revision {args.revision}")
    return 0


def _lease_grant(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.lease_grant(args.ttl)
    if out.json:
        out.message(response)
    else:
        out.line(f"lease {response.id} granted with TTL({response.ttl}s)")
    return 0


def _lease_revoke(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.lease_revoke(args.id)
    if out.json:
        out.message(response)
    else:
        out.line(f"lease {args.id} revoked")
    return 0


def _lease_ttl(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.lease_time_to_live(args.id, keys=args.keys)
    if out.json:
        out.message(response)
    elif response.ttl < 0:
        out.line(f"lease {args.id} does not exist (expired or revoked)")
    else:
        line = f"lease {response.id} granted with TTL({response.granted_ttl}s), "
        line += f"remaining({response.ttl}s)"
        if args.keys:
            keys = " ".join(key.decode("utf-8", errors="backslashreplace") for key in response.keys)
            line += f", attached keys([{keys}])"
        out.line(line)
    return 0


def _lease_list(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.leases()
    if out.json:
        out.message(response)
        return 0
    out.line(f"found {len(response.leases)} leases")
    for lease in response.leases:
        out.line(str(lease.id))
    return 0


def _cluster_status(args: argparse.Namespace, client: Client, out: Printer) -> int:
    results: list[tuple[str, cluster_pb2.StatusResponse | str]] = []
    failed = False
    for endpoint in client.endpoints:
        try:
            results.append((endpoint, client.status(endpoint)))
        except errors.ClientError as exc:
            failed = True
            results.append((endpoint, f"{exc.code.name}: {exc.message}"))
    out.statuses(results)
    return 1 if failed else 0


def _cluster_members(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.member_list()
    if out.json:
        out.message(response)
    else:
        out.members(response.members)
    return 0


def _cluster_add(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.member_add([args.peer_url], name=args.name, member_id=args.member_id)
    if out.json:
        out.message(response)
    else:
        out.line(f"member {response.member.id} added as a learner; promote it once caught up")
        out.members(response.members)
    return 0


def _cluster_promote(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.member_promote(args.id)
    if out.json:
        out.message(response)
    else:
        out.line(f"member {args.id} promoted to voter")
        out.members(response.members)
    return 0


def _cluster_remove(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.member_remove(args.id)
    if out.json:
        out.message(response)
    else:
        out.line(f"member {args.id} removed")
        out.members(response.members)
    return 0


def _cluster_transfer(args: argparse.Namespace, client: Client, out: Printer) -> int:
    response = client.transfer_leader(args.id)
    if out.json:
        out.message(response)
    else:
        out.line(f"leadership transferred to member {args.id}")
    return 0


def _snapshot_save(args: argparse.Namespace, client: Client, out: Printer) -> int:
    out.snapshot(client.snapshot_save(args.file))
    return 0


def _snapshot_restore(args: argparse.Namespace) -> int:
    # Imported here, like `serve`: it writes a replica's storage, so it needs the server.
    from triumvir.consensus.restore import restore_data_dir

    restored = restore_data_dir(args.file, args.data_dir, replica_config.parse_peers(args.peers))
    members = ",".join(str(member) for member in restored.members)
    sys.stdout.write(
        f"restored {args.file} into {restored.data_dir}: revision {restored.revision}, "
        f"log index {restored.index}, members {members}\n"
        f"start this member with --data-dir {restored.data_dir} --peers {args.peers}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
