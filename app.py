"""Start the bertdemo app: `python app.py` opens it on http://127.0.0.1:7860 (local only by default)."""
import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no outbound calls at start-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind; 0.0.0.0 exposes it to your network")
    parser.add_argument("--port", type=int, default=None, help="port (default 7860, or the next free one)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs network)")
    parser.add_argument("--auth", metavar="USER:PASS", help="require this login")
    parser.add_argument("--workspace", help="folder for saved runs (default $BERTDEMO_WORKSPACE or ./workspace)")
    args = parser.parse_args()
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            parser.error("--auth must look like user:password")
        auth = (user, password)

    from bertdemo.ui import build_app, launch_app

    launch_app(build_app(args.workspace), host=args.host, port=args.port, share=args.share, auth=auth)


if __name__ == "__main__":
    main()
