"""adc.daemon: the adcd entry point: parse arguments, wire the supervisor, run until signalled."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from adc import log as adclog

logger = logging.getLogger("adcd")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="adcd", description="adc daemon: a supervisor and one worker per core serving the VIPs of a config.",
        epilog="Exit codes: 0 stopped cleanly or config valid, 1 config invalid or start failed, 2 usage.")
    ap.add_argument("--config", "-c", metavar="FILE", help="the adc.yaml to run")
    ap.add_argument("--check", action="store_true", help="validate --config, print every error, exit 0 or 1")
    ap.add_argument("--socket", metavar="PATH", help="control API socket (default: global.admin_socket)")
    ap.add_argument("--state-dir", metavar="DIR", help="revisions and runtime state (default: global.state_dir)")
    ap.add_argument("--workers", type=int, metavar="N", help="worker processes (default: global.workers, auto = one per CPU)")
    ap.add_argument("--log-level", choices=["debug", "info", "notice", "warning", "error"])
    ap.add_argument("--demo", action="store_true", help="run the embedded demo config and its backends on loopback")
    args = ap.parse_args(argv)
    if not args.config and not args.demo:
        ap.error("--config FILE is required (or --demo)")
    if args.workers is not None and not 1 <= args.workers <= 256:
        ap.error("--workers must be 1..256")
    return args


def check(path: str) -> int:
    from adc.config.errors import ConfigInvalid
    from adc.config.loader import check_text, read_text
    try:
        res = check_text(read_text(path), path)
    except ConfigInvalid as e:
        res = e
    for w in res.warnings:
        print(f"{w} (warning)", file=sys.stderr)
    for err in res.errors:
        print(err, file=sys.stderr)
    if res.errors:
        print(f"{path}: invalid, {len(res.errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{path}: valid" + (f", {len(res.warnings)} warning(s)" if res.warnings else ""))
    return 0


async def run(args, config_path: str, on_ready=None) -> int:
    from adc.config.errors import ConfigInvalid
    from adc.config.loader import load_text, read_text
    from adc.control.api import Api
    from adc.control.supervisor import ApplyFailed, Supervisor
    from adc.health.checker import HealthChecker

    try:
        text = read_text(config_path)
        cfg = load_text(text, config_path)
    except ConfigInvalid as e:
        logger.error("%s: invalid, not started:\n%s", config_path, e)
        return 1
    g = cfg.global_
    adclog.set_level(args.log_level or g.log_level)
    nworkers = args.workers or (os.cpu_count() or 1 if g.workers == "auto" else g.workers)
    state_dir = args.state_dir or g.state_dir
    sock_path = args.socket or g.admin_socket
    try:
        os.makedirs(state_dir, exist_ok=True)
    except OSError as e:
        logger.error("state dir %s: %s", state_dir, e.strerror or e)
        return 1
    sup = Supervisor(config_path, nworkers=nworkers, state_dir=state_dir,
                     log_level=args.log_level or g.log_level, health=HealthChecker)
    loop = asyncio.get_running_loop()
    try:
        await sup.start(cfg, text)
    except ApplyFailed as e:
        logger.error("not started: %s", e)
        await sup.shutdown()
        return 1
    try:
        server = await Api(sup).serve(sock_path)
    except OSError as e:
        logger.error("control socket %s: %s", sock_path, e.strerror or e)
        await sup.shutdown()
        return 1
    logger.info("control API on %s", sock_path)
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(sup.shutdown()))
    loop.add_signal_handler(signal.SIGINT, lambda: loop.create_task(sup.shutdown()))
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(sup.reload_file()))
    if on_ready:
        on_ready(sup, sock_path)
    await sup.stopped.wait()
    server.close()
    try:
        os.unlink(sock_path)
    except OSError:
        pass
    logger.info("adcd stopped")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.check:
        if not args.config:
            print("adcd: --check needs --config FILE", file=sys.stderr)
            return 2
        return check(args.config)
    adclog.setup("adcd", args.log_level or "info")
    import uvloop
    if args.demo:
        from adc import demo
        return demo.main(args)
    return uvloop.run(run(args, args.config))


if __name__ == "__main__":
    sys.exit(main())
