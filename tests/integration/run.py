"""Runs one integration test module as `python3 -m unittest -v MODULE` does, and in the sanitizer build
(AGENTE_SANITIZER_REPORTS set, see tests/CMakeLists.txt) fails every test after which a new
AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer report appeared.

Workers are fork+exec'd by the master and their stderr is the server's error log, which a test reads
only for what it expects: a report there would go unseen, and a worker that aborted is replaced
before anyone notices. So ASAN_OPTIONS / UBSAN_OPTIONS carry log_path= into that directory, every
process a test starts inherits them, and this runner looks after each test.

    python3 run.py test_core [-k PATTERN]"""
import os
import re
import sys
import unittest

REPORTS = os.environ.get("AGENTE_SANITIZER_REPORTS", "")


def reports():
    try:
        return {os.path.join(REPORTS, f) for f in os.listdir(REPORTS)}
    except OSError:
        return set()


def read(path, limit=20000):
    with open(path, errors="replace") as f:
        return f.read(limit)


# What LeakSanitizer's tracer writes when the process it is scanning at exit is killed meanwhile: the
# master's fast stop SIGKILLs a worker still there fast_stop_grace after SIGQUIT, and a worker's exit
# scan can outlast that on a loaded machine. Such a file (or an empty one, the tracer killed before
# it wrote) holds no finding, only the news that no scan happened; it is named on stderr, not failed.
NO_SCAN = re.compile(r"\A(==\d+==Unable to get registers from thread \d+\.?\s*)*\Z")


def findings(paths):
    kept = []
    for path in paths:
        if NO_SCAN.match(read(path)):
            print(f"no leak scan (process killed during it): {path}", file=sys.stderr)
        else:
            kept.append(path)
    return kept


def describe(paths):
    return "\n".join(f"--- {path}\n{read(path)}" for path in paths)


class SanitizerCheckingResult(unittest.TextTestResult):
    """A test passes only if no process it started wrote a sanitizer report meanwhile. A report
    written before it (by a setUpClass) counts against it too: none is ever missed."""
    seen = set()

    def stopTest(self, test):
        new = sorted(reports() - self.seen)
        self.seen.update(new)
        new = findings(new)
        if new:
            error = AssertionError("sanitizer report(s) while this test ran:\n" + describe(new))
            self.addFailure(test, (AssertionError, error, None))
        super().stopTest(test)


def main():
    if REPORTS:
        os.makedirs(REPORTS, exist_ok=True)
        for path in reports():  # a previous run's
            os.remove(path)
    runner = unittest.TextTestRunner(resultclass=SanitizerCheckingResult, verbosity=2)
    program = unittest.main(module=None, argv=["run.py", *sys.argv[1:]], testRunner=runner, exit=False)
    late = findings(sorted(reports() - SanitizerCheckingResult.seen))  # after the last test (tearDownClass)
    if late:
        print("sanitizer report(s) after the last test:\n" + describe(late), file=sys.stderr)
    sys.exit(0 if program.result.wasSuccessful() and not late else 1)


if __name__ == "__main__":
    main()
