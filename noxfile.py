"""Sessions: tests on every available Python, lint, benchmarks, docs."""

import shutil

import nox

PYTHONS = [v for v in ("3.11", "3.12", "3.13") if shutil.which(f"python{v}")] or ["3.11"]
nox.options.sessions = ["tests", "lint", "docs"]


@nox.session(python=PYTHONS)
def tests(session):
    session.install("-e", ".[test]")
    # as the README's test command: compiled code is never unloaded from a worker
    for part in (("--backends", "c,none"), ("--backends", "numba", "--shard", "1/3"), ("--backends", "numba", "--shard", "2/3"), ("--backends", "numba", "--shard", "3/3"), ("--backends", "jax")):
        session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile", *part, *session.posargs)


@nox.session
def slow(session):
    """The whole-network checks the default run deselects (minutes of compiling per backend)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile", "-m", "slow", *session.posargs)


@nox.session
def lint(session):
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session
def bench(session):
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def docs(session):
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "-d", "site")
