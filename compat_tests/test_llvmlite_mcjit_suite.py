"""llvmlite's own MCJIT tests, run unchanged against this engine via install().

The tests come from the installed llvmlite package (llvmlite.tests.test_binding);
they run in a subprocess so that a crash fails this test instead of the run.
"""

import json
import subprocess
import sys
import textwrap

RUNNER = textwrap.dedent(
    """
    import json, unittest
    import execution_engine
    execution_engine.install()
    import llvmlite.binding as llvm
    from llvmlite.tests import test_binding as tb
    assert llvm.create_mcjit_compiler is execution_engine.create_mcjit_compiler
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for cls in (tb.TestMCJit, tb.TestGlobalConstructors):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    for name in ("test_add_object_file", "test_add_object_file_from_filesystem"):
        suite.addTest(tb.TestObjectFile(name))
    engines = []
    original = execution_engine.ExecutionEngine.__init__
    def counting_init(self, *a, **k):
        engines.append(type(self).__name__)
        original(self, *a, **k)
    execution_engine.ExecutionEngine.__init__ = counting_init
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    print(json.dumps({"run": result.testsRun, "failures": len(result.failures),
                      "errors": len(result.errors), "skipped": len(result.skipped),
                      "engines": len(engines)}))
    """
)


def test_llvmlite_mcjit_tests_pass_with_install():
    proc = subprocess.run([sys.executable, "-c", RUNNER], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["run"] == 33, summary
    assert summary["failures"] == 0 and summary["errors"] == 0, proc.stderr[-4000:]
    assert summary["skipped"] == 0, summary
    # Every engine the tests created was this package's.
    assert summary["engines"] >= 25, summary
