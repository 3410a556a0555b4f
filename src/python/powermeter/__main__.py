"""python3 -m powermeter [CONFIG]: prints the seed's values as the seed's
script did, json.dumps(values, indent=4). Exit status 1 when a device
failed (it is left out, with a warning on stderr), 78 for a bad config."""

import json
import logging
import sys

from . import ConfigError, get_values


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        print("usage: python3 -m powermeter [CONFIG]", file=sys.stderr)
        return 2
    logging.basicConfig(format="powermeter: %(message)s")
    failed = []

    class _Count(logging.Handler):
        def emit(self, record):
            failed.append(record)

    counter = _Count(logging.WARNING)
    logging.getLogger("powermeter").addHandler(counter)
    try:
        values = get_values(argv[1] if len(argv) == 2 else None)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 78
    except OSError as e:
        print("powermeter: %s" % e, file=sys.stderr)
        return 78 if e.filename else 1
    finally:
        logging.getLogger("powermeter").removeHandler(counter)
    print(json.dumps(values, indent=4))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
