# A resident docker-compose (v1): imports the host's Compose once, then runs one of its
# commands per request line, in-process, exactly as the `docker-compose` script would
# (compose.cli.main.main), and answers one line. See compose_resident.rs beside it.
import contextlib
import io
import json
import logging
import os
import sys

protocol_out = sys.stdout
try:
    import compose
    from compose.cli import main as cli
except Exception as e:  # not a Python Compose: the harness runs the program instead
    protocol_out.write(json.dumps({"unavailable": type(e).__name__}) + "\n")
    protocol_out.flush()
    sys.exit(0)

protocol_out.write(json.dumps({"version": compose.__version__}) + "\n")
protocol_out.flush()

for line in sys.stdin:
    request = json.loads(line)
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        os.chdir(request["dir"])
        sys.argv = ["docker-compose"] + request["args"]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            finally:
                # main() adds a console handler to the root logger on every call.
                for handler in list(logging.getLogger().handlers):
                    logging.getLogger().removeHandler(handler)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException as e:
        code = 1
        err.write("{}: {}".format(type(e).__name__, e))
    protocol_out.write(
        json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\n"
    )
    protocol_out.flush()
