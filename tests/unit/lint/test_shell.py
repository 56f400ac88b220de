"""builder.lint.shell: commands and words as hadolint (ShellCheck's oversimplify) sees them."""

from __future__ import annotations

from builder.lint.shell import EXPANSION, parse


def test_commands_in_every_construct() -> None:
    s = parse("a && b || c; d | e\nif f; then g; fi\nfor i in x; do h $i; done\n"
              "(cd /x && j) ; k $(l) `m` <(n)\ncase x in y) o ;; esac\nwhile p; do q; done")
    assert s.names == ("a", "b", "c", "d", "e", "f", "g", "h", "cd", "j", "k", "l", "m",
                       "n", "o", "p", "q")
    assert s.has_pipes


def test_words_quotes_and_expansions() -> None:
    (c,) = parse("""pip install 'a==1' "b>=2" c\\ d $X ${Y:-z} "pre-$Z" $'e\\n'""").commands
    assert c.args == ("install", "a==1", "b>=2", "c d", EXPANSION, EXPANSION,
                      f"pre-{EXPANSION}", "e\\n")


def test_flags_follow_hadolints_convention() -> None:
    (c,) = parse("apt-get -yq --no-install-recommends --target-release=b - -- install x").commands
    assert c.flags == ("y", "q", "no-install-recommends", "target-release")
    assert c.args_no_flags() == ("-", "--", "install", "x")
    assert c.has_flag("y") and not c.has_flag("x")


def test_flag_values() -> None:
    (c,) = parse("apt-get install -t bookworm-backports pkg --opt=v").commands
    assert c.without_flag_values("t").args_no_flags() == ("install", "pkg")
    assert c.flag_value("t") == "bookworm-backports" and c.flag_value("opt") == "v"


def test_assignments_and_declarations() -> None:
    a, b = parse("PIP_NO_CACHE_DIR=0 pip install x; export A=1 B").commands
    assert a.name == "pip" and a.env == (("PIP_NO_CACHE_DIR", "0"),)
    assert b.name == "export" and b.args == ("A=1", "B")


def test_variables_used_not_single_quoted() -> None:
    assert parse("echo $A \"${B}\" '$C' $(echo $D)").variables == ("A", "B", "D")


def test_unparseable_text_never_raises() -> None:
    s = parse("if then fi (((( ]] `")
    assert isinstance(s.commands, tuple)
