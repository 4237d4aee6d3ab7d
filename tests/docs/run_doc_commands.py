#!/usr/bin/env python3
"""Runs the shell commands of reel's README and docs, in order, as written.

Every ```sh fenced block of the given Markdown files is a promise: its commands are run
one after another in one bash session at the repository root (so an `export` or a file
written by one command is there for the next), starting from a fresh checkout's state.
Other blocks (```text, ```python, ```ini, indented blocks) are illustrations, not run.

What is changed, and only this (printed with each command it touches):
  * training is shortened: a command that runs `reel train` (directly, through mpirun,
    srun, scripts/reel-mpirun or scripts/cluster.sh), slurm/train.sbatch or scripts/demo.sh gets
    `--run.steps N` (N = --steps, default 20; a smaller --run.steps given stays).
    A --dry-run trains nothing and is left alone.
What is skipped, each with its reason printed:
  * a command whose comment says `(needs ...)`: a GPU, a Slurm cluster, your own videos;
  * the commands that run this very test (scripts/test.sh, ctest) and the benchmarks
    (scripts/bench.sh: 20-30 minutes, every part of it has its own test);
  * scripts/cluster.sh commands where this machine cannot make network namespaces (not
    root), with the commands that run inside that cluster.

Exit status: 0 when every command that ran succeeded and nothing was written outside
runs/ (which is then removed); 1 at the first that failed (naming its file and line; runs/ is kept to be looked at, and the next run removes it);
77 (skipped) when the tree is not a fresh checkout's state (a runs/ this test did not make
exists) or the build is not at build/ as the commands expect.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys

RUNS_THIS_TEST = {
    "scripts/test.sh": "runs the whole test suite, of which this test is part (.ci/run runs it)",
    "ctest": "runs the whole test suite, of which this test is part",
    "scripts/bench.sh": "the benchmarks: 20-30 minutes (each benchmark's parts have their own tests)",
}
TRAINS = re.compile(r"(^|[\s/])reel\s+(\S+\s+)*?train(\s|$)|(^|[\s/])reel-mpirun\s.*--\s+train(\s|$)|slurm/train\.sbatch|scripts/demo\.sh")


def commands(path):
    """(line, command) for every command of the file's ```sh blocks; continuations joined."""
    out, in_sh, pending, first = [], False, "", 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            stripped = line.strip()
            if stripped.startswith("```"):
                in_sh = not in_sh and stripped[3:].strip() == "sh"
                continue
            if not in_sh:
                continue
            if not pending:
                if not stripped or stripped.startswith("#"):
                    continue
                first = number
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            out.append((first, pending + stripped))
            pending = ""
    return out


def split_comment(command):
    """(code, comment): the comment starts at a # after whitespace, outside quotes."""
    quote = None
    for i, ch in enumerate(command):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or command[i - 1].isspace()):
            return command[:i].rstrip(), command[i + 1:].strip()
    return command.rstrip(), ""


def shorten(code, steps):
    """The command with training capped at `steps` (None when it trains nothing)."""
    if not TRAINS.search(code) or "--dry-run" in code:
        return None
    given = re.search(r"--run\.steps[ =](\d+)", code)
    if given:
        if int(given.group(1)) <= steps:
            return None
        return code[:given.start(1)] + str(steps) + code[given.end(1):]
    return f"{code} --run.steps {steps}"


def skip_reason(code, comment, cluster_ok):
    needs = re.search(r"\(needs ([^)]*)\)", comment)
    if needs:
        return "needs " + needs.group(1)
    words = shlex.split(code.split("&&")[-1]) if code else []
    for cmd, why in RUNS_THIS_TEST.items():
        if any(w == cmd or w.endswith("/" + cmd) for w in words[:1]) or (cmd == "ctest" and " ctest" in " " + code):
            return why
    if not cluster_ok and "scripts/cluster.sh" in code:
        return "scripts/cluster.sh needs root and network namespaces, which this machine does not give"
    return None


def untracked():
    """Untracked, not ignored paths of the checkout (git status, folders collapsed)."""
    out = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout
    return {line[3:] for line in out.splitlines() if line.startswith("?? ")}


def cluster_possible():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True).returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, help="the repository root")
    ap.add_argument("--build", required=True, help="the build directory in use (must be ROOT/build)")
    ap.add_argument("--steps", type=int, default=20, help="training steps at most")
    ap.add_argument("--list", action="store_true", help="print what would run, run nothing")
    ap.add_argument("files", nargs="*",
                    help="Markdown files, in the order to run them (default: README.md, then docs/*.md by name)")
    a = ap.parse_args()
    os.chdir(a.root)
    if not a.files:
        a.files = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir("docs") if f.endswith(".md"))
    if os.path.realpath("build") != os.path.realpath(a.build):
        print(f"SKIPPED: the documented commands use build/launch/reel, and this build is {a.build}")
        return 77
    # runs/ left by this test's own failed or killed run (it is kept to be looked at) goes.
    owned = os.path.join(a.build, "docs-commands.runs-owned")
    if os.path.exists("runs") and os.path.exists(owned) and not a.list:
        print(f"removing runs/, left by an earlier run of this test that did not finish ({owned})")
        shutil.rmtree("runs")
    if os.path.exists("runs") and not a.list:
        print("SKIPPED: runs/ exists: the documented commands start from a fresh checkout, where it does not "
              "(CI's fresh clone has none; or move runs/ away)")
        return 77
    cluster_ok = cluster_possible()
    script = ["set -uo pipefail",
              # A cluster left up by a failing command is taken down (the command that brings it up is in the docs).
              "trap 'scripts/cluster.sh down >/dev/null 2>&1 || true' EXIT"]
    for path in a.files:
        for line, command in commands(path):
            code, comment = split_comment(command)
            where = f"{path}:{line}"
            why = skip_reason(code, comment, cluster_ok)
            if why:
                print(f"{where}: skipped ({why}): {command}")
                continue
            short = shorten(code, a.steps)
            run = short or code
            note = f"   [shortened: {run}]" if short else ""
            print(f"{where}: runs: {code}{note}")
            script += [f"printf '\\n==> %s\\n' {shlex.quote(where + ': ' + run)}",
                       run,
                       f"rc=$?; [ $rc -eq 0 ] || {{ echo \"FAILED (exit $rc): {where}: \"{shlex.quote(code)}; exit 1; }}"]
    if a.list:
        return 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMPI_ALLOW_RUN_AS_ROOT")}  # as a user has it
    sys.stdout.flush()
    before = untracked()
    with open(owned, "w") as f:
        f.write(f"runs/ in {os.getcwd()} is made by tests/docs/run_doc_commands.py; the next run removes it\n")
    rc = subprocess.run(["bash", "-c", "\n".join(script)], env=env).returncode
    if rc:
        return 1
    # The commands write under runs/ only: nothing else appears in the checkout.
    stray = sorted(untracked() - before - {"runs/"})
    if stray:
        print("FAILED: the documented commands left files outside runs/: " + ", ".join(stray))
        return 1
    shutil.rmtree("runs", ignore_errors=True)  # the checkout is fresh again
    os.remove(owned)
    print("\nevery documented command ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
