"""Unit tests of the backend's pure helpers, run inside the backend container by `sandstack test`.

Writes JUnit XML to the path given with --junit (stdlib only: unittest + xml.etree).
"""
import datetime
import sys
import time
import unittest
import xml.etree.ElementTree as ET

import backend


class ItemJson(unittest.TestCase):
    def test_item_row_becomes_json(self):
        ts = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        self.assertEqual(backend.item_json((7, "signal", ts)), {"id": 7, "name": "signal", "created_at": backend.iso(ts)})

    def test_iso_is_utc_with_z(self):
        ts = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        self.assertTrue(backend.iso(ts).endswith("Z"))


class Config(unittest.TestCase):
    def test_migration_creates_the_three_tables(self):
        for table in ("schema_migrations", "items", "workers"):
            self.assertIn(f"CREATE TABLE IF NOT EXISTS {table}", backend.MIGRATION_SQL)


class JUnitResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cases = []
        self._t0 = 0.0

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def _record(self, test, status, message=""):
        self.cases.append((test, status, message, time.monotonic() - self._t0))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failure", str(err[1]))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", f"{err[0].__name__}: {err[1]}")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)


def write_junit(result, path):
    suite = ET.Element("testsuite", name="backend-unit", tests=str(len(result.cases)),
                       failures=str(sum(1 for c in result.cases if c[1] == "failure")),
                       errors=str(sum(1 for c in result.cases if c[1] == "error")),
                       skipped=str(sum(1 for c in result.cases if c[1] == "skipped")),
                       time=f"{sum(c[3] for c in result.cases):.3f}")
    for test, status, message, seconds in result.cases:
        case = ET.SubElement(suite, "testcase", classname=type(test).__name__, name=test._testMethodName, time=f"{seconds:.3f}")
        if status in ("failure", "error", "skipped"):
            ET.SubElement(case, status, message=message)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


if __name__ == "__main__":
    junit = sys.argv[sys.argv.index("--junit") + 1] if "--junit" in sys.argv else None
    runner = unittest.TextTestRunner(verbosity=2, resultclass=JUnitResult)
    result = runner.run(unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]))
    if junit:
        write_junit(result, junit)
    sys.exit(0 if result.wasSuccessful() else 1)
