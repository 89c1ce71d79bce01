"""METEOR 1.5 through the jar that ships inside the ``pycocoevalcap`` wheel (it needs a Java runtime).

The protocol is the one ``pycocoevalcap/meteor/meteor.py`` speaks to ``meteor-1.5.jar - - -stdio -l en -norm``:
one ``SCORE ||| ref … ||| hyp`` line per example answers with that example's statistics, then one
``EVAL ||| stats …`` line answers with each example's score and the corpus score (computed by METEOR from the
summed statistics, not the mean of the examples).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from datakit.errors import DatakitError

INSTALL_HINT = (
    "install the eval extra (`pip install 'datakit[eval]'`, which brings pycocoevalcap and its METEOR 1.5 jar) "
    "and a Java runtime (e.g. `apt-get install default-jre-headless`)"
)


class MeteorError(DatakitError):
    """The METEOR jar could not be run to the end."""


@dataclass(frozen=True)
class MeteorSetup:
    """Where METEOR would run from, or why it cannot."""

    java: str | None
    jar: Path | None
    reason: str | None  # None when both are there

    @property
    def available(self) -> bool:
        """Whether METEOR can be computed here."""
        return self.reason is None


def locate() -> MeteorSetup:
    """Find ``java`` on PATH and ``meteor-1.5.jar`` inside the installed ``pycocoevalcap``."""
    java = shutil.which("java")
    jar = None
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "meteor" / "meteor-1.5.jar"
        jar = candidate if candidate.is_file() else None
    missing = []
    if java is None:
        missing.append("no Java runtime (`java` is not on PATH)")
    if jar is None:
        missing.append("pycocoevalcap (which ships meteor-1.5.jar) is not installed")
    return MeteorSetup(java, jar, "; ".join(missing) or None)


def _clean(text: str) -> str:
    # one line per example and '|||' separates fields: neither may appear inside a text
    return " ".join(text.replace("|||", "").split())


def meteor(hyps: Sequence[str], refs: Sequence[Sequence[str]], setup: MeteorSetup | None = None,
           *, memory: str = "2G") -> tuple[float, list[float]]:
    """Corpus METEOR and each example's, from the METEOR 1.5 jar (English, ``-norm``)."""
    setup = setup or locate()
    if not setup.available:
        raise MeteorError(f"METEOR cannot run: {setup.reason}", hint=INSTALL_HINT)
    if not hyps:
        return 0.0, []
    assert setup.jar is not None and setup.java is not None
    cmd = [setup.java, "-jar", f"-Xmx{memory}", setup.jar.name, "-", "-", "-stdio", "-l", "en", "-norm"]
    # the jar finds its paraphrase table relative to its own folder
    proc = subprocess.Popen(cmd, cwd=setup.jar.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        stats = [_ask(proc, " ||| ".join(["SCORE", *(_clean(r) for r in rs), _clean(h)]))
                 for h, rs in zip(hyps, refs, strict=True)]
        for line in stats:
            _number(line.split()[0] if line.split() else line, line)  # statistics are numbers
        # EVAL answers with one line per example, then the corpus score
        first = _ask(proc, " ||| ".join(["EVAL", *stats]))
        scores = [_number(line, line) for line in [first, *(_answer(proc) for _ in range(len(stats) - 1))]]
        corpus = _number(_answer(proc), "the corpus score")
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:  # a pipe to a JVM that has died: nothing left to flush to
                pass
    return corpus, scores


def _number(text: str, line: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise MeteorError(f"the METEOR jar answered {line!r} where numbers were expected",
                          hint="check that `java -version` works and that the JVM may take the memory it "
                          "asks for") from None


def _ask(proc: subprocess.Popen, line: str) -> str:
    """Send one line to the running jar and read its first answer line."""
    assert proc.stdin is not None
    try:
        proc.stdin.write((line + "\n").encode("utf-8"))
        proc.stdin.flush()
    except BrokenPipeError:
        pass  # the jar has stopped; _answer says why
    return _answer(proc)


def _answer(proc: subprocess.Popen) -> str:
    """The jar's next answer line; an error with its last words when it has stopped."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        err = proc.stderr.read().decode("utf-8", "replace")[-500:].strip() if proc.stderr else ""
        raise MeteorError(f"the METEOR jar stopped answering: {err or 'no message'}",
                          hint="check that `java -version` works and that the JVM may take the memory it asks for")
    return line.decode("utf-8").strip()
