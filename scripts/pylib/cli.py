"""The importers' command lines: argparse with usage errors on one line.

    ap = cli.ArgumentParser(description=...)     # then as argparse.ArgumentParser

argparse prints the usage line and then `PROG: error: ...`; bad flags are bad input, which the
project reports in one `error: ...` line with exit status 2, so this parser prints
`error: PROG: MESSAGE (see PROG --help)` instead. Standard library only.
"""
import argparse
import sys


class ArgumentParser(argparse.ArgumentParser):
  def error(self, message):
    print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
    sys.exit(2)
