"""Run many ``zoo`` invocations in one process under an address-space limit; report each outcome.

Used by ``test_hostile_inputs.py``: ``python hostile_runner.py CASES.json RESULTS.json``. After
the imports every case may allocate at most ``LIMIT_GIB`` more (``RLIMIT_AS``), so a hostile
config that asks for hundreds of gigabytes fails the case instead of the machine. A case with
``fsize`` runs as on a full disk: no file may grow past that many bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import resource
import subprocess
import sys
import traceback
from pathlib import Path

LIMIT_GIB = 2


def _vm(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def run_cases(cases: list[dict], folder: Path, env: dict[str, str]) -> dict:
    """Run ``cases`` in a fresh process of this script, files in ``folder``: its report."""
    (folder / "cases.json").write_text(json.dumps(cases))
    run = subprocess.run(
        [sys.executable, __file__, str(folder / "cases.json"), str(folder / "results.json")],
        env=env, capture_output=True, encoding="utf-8", timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((folder / "results.json").read_text())


def file_digests(path: Path) -> dict[str, str]:
    """Every file under ``path`` with its sha256: equal before and after means byte-identical."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def file_size_limit(nbytes: int | None):
    """A full disk without root: no file of this process may grow past ``nbytes`` while the
    case runs (``RLIMIT_FSIZE``; Python ignores SIGXFSZ, so a write fails with EFBIG)."""
    if nbytes is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def main() -> None:
    cases = json.load(open(sys.argv[1]))
    import torch  # noqa: F401  (the libraries' own mappings come before the limit)

    from zoo_ensemble import cli  # noqa: F401
    from zoo_ensemble.zoo import catalog, hub, loading, verify  # noqa: F401
    from zoo_ensemble.cli import main as zoo

    cli._register()
    torch.ones(4) @ torch.ones(4)  # start the thread pool before the limit, as a real run would have
    limit = _vm("VmSize:") + LIMIT_GIB * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    results = []
    for case in cases:
        out, err = io.StringIO(), io.StringIO()
        code: object = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), file_size_limit(case.get("fsize")):
            try:
                zoo(case["argv"])
            except SystemExit as exc:
                code = exc.code
            except BaseException:  # a crash: recorded with its traceback, the run goes on
                code = "crash"
                err.write(traceback.format_exc())
        results.append({"name": case["name"], "code": code, "stderr": err.getvalue(), "stdout": out.getvalue()})
    json.dump({"results": results, "peak_rss": _vm("VmHWM:"), "limit_extra": LIMIT_GIB * 2**30}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
