from tests.annotate.run_fixture import _demo_run_base, demo_run  # noqa: F401
