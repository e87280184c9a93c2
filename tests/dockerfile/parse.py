"""Parses a Dockerfile with BuildKit's own parser (PyPI `dockerfile`, which wraps
github.com/moby/buildkit/frontend/dockerfile/parser) and prints its instructions as JSON.

    parse.py DOCKERFILE

A file the parser rejects is printed as {"error": ...} with exit status 1.
"""

import json
import sys

import dockerfile


def main(path):
    try:
        commands = dockerfile.parse_file(path)
    except dockerfile.GoParseError as e:
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps([c._asdict() for c in commands]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
