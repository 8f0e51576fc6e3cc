"""The ``kakehashi`` command line: help everywhere, version, and ``corda init``/``serve`` errors.

Errors a user can make must end with a clear one-line message and exit code 2, never a Python
traceback, and must leave existing files (keys, network map) untouched.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from kakehashi import __version__
from kakehashi.cli.main import app
from kakehashi.ledgers.corda.node.network import NetworkMap
from kakehashi.ledgers.corda.node.setup import NETWORK_MAP, init_network

NOTARY = "O=Notary, L=Zurich, C=CH"
ISSUER = "O=Issuer, L=Tokyo, C=JP"
BANK_A = "O=Bank A, L=London, C=GB"
BANK_B = "O=Bank B, L=Osaka, C=JP"


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group, as the words that call it (typer vendors its own click)."""
    paths = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += _command_paths(sub, (*path, name))
    return paths


COMMAND_PATHS = _command_paths(typer.main.get_command(app))


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), prog_name="kakehashi")


def flat(text: str) -> str:
    """Output with rich's line wrapping and box drawing undone, for substring checks."""
    return " ".join(text.replace("│", " ").split())


def assert_clean_failure(result: Result, *fragments: str) -> None:
    """Exit code 2, a message with every fragment, no traceback."""
    output = flat(result.output)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in {output!r}"


def init(directory: Path, *extra: str) -> Result:
    args = ["corda", "init", str(directory), "--notary", NOTARY]
    for node in (ISSUER, BANK_A, BANK_B):
        args += ["--node", node]
    return run(*args, *extra)


def snapshot_files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


# -- help and version ----------------------------------------------------------------------------


def test_every_command_is_found() -> None:
    assert {("version",), ("demo",), ("corda",), ("corda", "init"), ("corda", "serve")} <= set(
        COMMAND_PATHS
    )


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "kakehashi")
def test_help_of_every_command(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    output = flat(result.output)
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert f"Usage: {' '.join(('kakehashi', *path))} " in output
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    summary = (command.help or "").strip().splitlines()
    assert summary and flat(summary[0]) in output, "every command says what it does"


@pytest.mark.parametrize("path", [p for p in COMMAND_PATHS if p in {(), ("corda",)}])
def test_a_group_without_a_command_shows_its_usage(path: tuple[str, ...]) -> None:
    result = run(*path)
    assert result.exit_code == 2  # click's "no arguments, help shown" exit code
    assert f"Usage: {' '.join(('kakehashi', *path))} " in flat(result.output)


def test_unknown_command_is_a_usage_error() -> None:
    result = run("nonsense")
    assert_clean_failure(result, "No such command 'nonsense'")


def test_version() -> None:
    result = run("version")
    assert result.exit_code == 0, result.output
    assert result.output == f"kakehashi {__version__}\n"


def test_installed_console_script() -> None:
    script = Path(sys.executable).with_name("kakehashi")
    if not script.exists():
        pytest.skip("the kakehashi console script is not installed next to this interpreter")
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "corda" in done.stdout
    done = subprocess.run(
        [str(script), "version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"kakehashi {__version__}")


# -- corda init ----------------------------------------------------------------------------------


def test_corda_init_writes_keys_tokens_and_the_map(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    result = init(directory, "--base-port", "21000")
    assert result.exit_code == 0, result.output
    assert f"network map written to {directory / NETWORK_MAP}" in flat(result.output)

    network = NetworkMap.load(directory / NETWORK_MAP)
    names = [str(info.party.name) for info in network.nodes]
    assert names == [NOTARY, ISSUER, BANK_A, BANK_B]
    assert [info.url for info in network.nodes] == [
        f"http://127.0.0.1:{port}" for port in range(21_000, 21_004)
    ]
    assert [info.notary for info in network.nodes] == [True, False, False, False]
    tokens = set()
    for folder in ("notary", "issuer", "bank-a", "bank-b"):
        for secret in ("identity.key", "rpc.token"):
            path = directory / folder / secret
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        token = (directory / folder / "rpc.token").read_text().strip()
        assert len(token) == 32 and int(token, 16) >= 0
        tokens.add(token)
    assert len(tokens) == 4


def test_corda_init_refuses_a_directory_with_a_network_map(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    assert init(directory, "--base-port", "21000").exit_code == 0
    before = snapshot_files(directory)

    again = init(directory, "--base-port", "22000")
    assert_clean_failure(
        again, f"error: {directory / NETWORK_MAP} already exists; choose an empty directory"
    )
    assert again.output.startswith("error:")
    # Nothing was overwritten: not the map, not a key, not a token.
    assert snapshot_files(directory) == before


def test_corda_init_never_overwrites_a_key(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    assert init(directory).exit_code == 0
    (directory / NETWORK_MAP).unlink()
    before = snapshot_files(directory)

    result = init(directory)
    assert_clean_failure(result, "identity.key already exists", "choose an empty directory")
    assert snapshot_files(directory) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--notary", "garbage"], "cannot parse X.500 name 'garbage'"),
        # User input is printed as it is, never read as rich markup (this used to crash).
        (["--notary", "garbage[/x]"], "cannot parse X.500 name 'garbage[/x]'"),
        (["--node", "O=Twin, L=A, C=GB", "--node", "O=Twin, L=B, C=GB"], "share a folder"),
        (["--base-port", "0"], "Invalid value for '--base-port'"),
        (["--base-port", "-5"], "Invalid value for '--base-port'"),
        (["--base-port", "70000"], "Invalid value for '--base-port'"),
        (["--base-port", "65534"], "leaves no room for 3 parties"),
        (["--base-port", "many"], "Invalid value for '--base-port'"),
    ],
)
def test_corda_init_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    directory = tmp_path / "net"
    result = run("corda", "init", str(directory), *args)
    assert_clean_failure(result, message)
    assert not (directory / NETWORK_MAP).exists()


def test_corda_init_prints_names_as_given(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    result = run("corda", "init", str(directory), "--notary", "O=[bold]Notary, L=Zurich, C=CH")
    assert result.exit_code == 0, result.output
    assert "notary O=[bold]Notary, L=Zurich, C=CH  http://127.0.0.1:10000" in result.output


def test_corda_init_into_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("keep me\n")
    result = run("corda", "init", str(a_file))
    assert_clean_failure(result, "error: cannot create the network in", "Not a directory")
    assert a_file.read_text() == "keep me\n"


# -- corda serve (errors only: a successful serve runs until stopped) ---------------------------


@pytest.fixture
def network_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "net"
    assert init(directory, "--base-port", "21000").exit_code == 0
    return directory


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("O=Nobody, L=Nowhere, C=US", [], "O=Nobody, L=Nowhere, C=US is not on the network map"),
        ("garbage", [], "cannot parse X.500 name 'garbage'"),
        ("O=[red]Nobody, L=X, C=US", [], "O=[red]Nobody, L=X, C=US is not on the network map"),
        (NOTARY, ["--db-url", "mysql://somewhere/db"], "unsupported database URL"),
    ],
)
def test_corda_serve_bad_input(
    network_dir: Path, name: str, extra: list[str], message: str
) -> None:
    result = run("corda", "serve", str(network_dir), "--name", name, *extra)
    assert_clean_failure(result, message)


def test_corda_serve_without_a_network(tmp_path: Path) -> None:
    result = run("corda", "serve", str(tmp_path / "nowhere"), "--name", BANK_A)
    assert_clean_failure(result, "network map file", "does not exist")


def test_corda_serve_with_a_corrupt_map_or_key(network_dir: Path) -> None:
    (network_dir / "bank-a" / "identity.key").write_text("junk\n")
    assert_clean_failure(run("corda", "serve", str(network_dir), "--name", BANK_A), "error:")
    (network_dir / NETWORK_MAP).write_text("[[nodes\n")
    result = run("corda", "serve", str(network_dir), "--name", BANK_B)
    assert_clean_failure(result, "is not valid TOML")


def test_corda_serve_needs_a_url(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    init_network(directory, NOTARY, [BANK_A])  # no base port: no URLs on the map
    result = run("corda", "serve", str(directory), "--name", BANK_A)
    assert_clean_failure(result, f"the network map gives no URL for {BANK_A}")
