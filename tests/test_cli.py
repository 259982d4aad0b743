"""The ``paretune`` front door (search/cli.py): its help lists the verbs, each verb reaches
its tool unchanged, and a bad verb or a tool's error exits 2 with the message."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from search import cli

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_verb_under_its_tool(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: paretune VERB")
    search_part, analysis_part = out.split("verbs of python -m analysis:")
    for verb, (tool, what) in cli.VERBS.items():
        part = search_part if tool == "search" else analysis_part
        assert re.search(rf"^  {verb} +{re.escape(what)}$", part, re.M), verb
    assert set(cli.VERBS) == {"run", "resume", "submit", "jobs", "logs", "stop", "rerun",
                              "frontier", "pick", "export", "report"}


@pytest.mark.parametrize("argv,said", [([], "a verb is required"),
                                       (["bogus"], "unknown verb 'bogus'")])
def test_a_missing_or_unknown_verb_exits_2_naming_the_verbs(argv, said, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"paretune: error: {said}; verbs: run, resume, submit" in err


def test_an_analysis_verb_reaches_analysis_and_keeps_its_error_and_code(tmp_path, capsys):
    missing = tmp_path / "MISSING"
    assert cli.main(["frontier", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "MISSING" in err


@pytest.mark.parametrize("verb", sorted(cli.VERBS))
def test_every_verb_is_a_subcommand_of_its_tool(verb, capsys):
    with pytest.raises(SystemExit) as e:          # argparse's --help exits 0
        cli.main([verb, "--help"])
    assert e.value.code == 0
    assert f"python -m {cli.VERBS[verb][0]} {verb}" in capsys.readouterr().out


def test_rerun_goes_to_search():
    assert cli.VERBS["rerun"][0] == "search"


def test_the_console_script_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    scripts = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^paretune = "search\.cli:main"$', scripts, re.M)
