"""Start the bertdemo app: `python app.py` opens it on http://127.0.0.1:7860 (local only by default).

For a shared (classroom) server: `python app.py --host 0.0.0.0 --auth-file users.txt --admin teacher`. Under
--auth, or off the loopback address, only a run's or a project's owner (or an admin) may delete it, download its
data or stop its job. Limits (file size, rows, classes, job time…) are listed by `--limit help`.
"""
import argparse
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no outbound calls at start-up
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def read_users(args, parser) -> list[tuple[str, str]]:
    """--auth user:password (repeatable) and --auth-file (one user:password a line; # comments)."""
    pairs = list(args.auth or [])
    if args.auth_file:
        try:
            with open(args.auth_file, encoding="utf-8") as handle:
                pairs += [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]
        except OSError as err:
            parser.error(f"cannot read --auth-file {args.auth_file}: {err.strerror}")
    users = []
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not sep or not user.strip() or not password:
            parser.error("each login must look like user:password")
        users.append((user.strip(), password))
    return users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind; 0.0.0.0 exposes it to your network")
    parser.add_argument("--port", type=int, default=None, help="port (default 7860, or the next free one)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs network)")
    parser.add_argument("--auth", metavar="USER:PASS", action="append", help="require this login (repeatable)")
    parser.add_argument("--auth-file", metavar="FILE", help="logins, one user:password per line")
    parser.add_argument("--admin", action="append", default=[], help="a user who may delete anyone's runs")
    parser.add_argument("--workspace", help="folder for saved runs (default $BERTDEMO_WORKSPACE or ./workspace)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="raise or lower a limit (--limit help lists them)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="also load pickled pytorch_model.bin weights (they can run code: trusted files only)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from bertdemo.limits import Limits, apply_overrides

    if "help" in args.limit:
        for name, value in Limits().__dict__.items():
            print(f"{name} = {value}")
        return
    try:
        apply_overrides(args.limit)
    except ValueError as err:
        parser.error(str(err))
    if args.allow_pickle:
        os.environ["BERTDEMO_ALLOW_PICKLE"] = "1"
    users = read_users(args, parser)
    exposed = args.share or args.host not in LOOPBACK
    if exposed and not users:
        print("warning: the app is reachable from other machines and has no login: anyone who can reach it can use "
              "it. Add --auth user:password or --auth-file FILE.", file=sys.stderr)

    from bertdemo.ui import build_app, launch_app

    demo = build_app(args.workspace, enforce_ownership=bool(users) or exposed, admins=tuple(args.admin))
    launch_app(demo, host=args.host, port=args.port, share=args.share, auth=users or None)


if __name__ == "__main__":
    main()
