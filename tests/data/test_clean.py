"""Text cleaning steps, one by one."""

from __future__ import annotations

import pytest

from lugpi_cli.data.clean import (
    clean_imdb_review,
    clean_newsgroup_post,
    decode_text,
    normalize_whitespace,
    remove_email_addresses,
    strip_html_tags,
    strip_newsgroup_header,
    unescape_entities,
)


def test_normalize_whitespace_collapses_every_kind():
    assert normalize_whitespace("  a\tb\r\n\n c\u00a0d  ") == "a b c d"
    assert normalize_whitespace(" \n\t ") == ""


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("one.<br /><br />two", "one.  two"),
        ("<BR/>x<br>y", " x y"),
        ("<i>so</i> <em>very</em> <p align='x'>good</p><hr>", " so   very   good  "),
        ("<grin> <SPOILER>end</SPOILER> a < b > c <-- see", "<grin> <SPOILER>end</SPOILER> a < b > c <-- see"),
    ],
)
def test_strip_html_tags_removes_only_html_elements(raw, clean):
    assert strip_html_tags(raw) == clean


def test_unescape_entities():
    assert unescape_entities("Tom &amp; Jerry &#8230; &quot;hi&quot; &A;") == 'Tom & Jerry … "hi" &A;'


def test_clean_imdb_review():
    raw = "Great film.<br /><br />Loved it &amp; the &lt;i&gt; tag stays text.  <i>Really</i>."
    assert clean_imdb_review(raw) == "Great film. Loved it & the <i> tag stays text. Really ."


def test_strip_newsgroup_header_drops_everything_before_first_blank_line():
    post = "From: a@b.edu\nSubject: Re: hello\nOrganization: X\n\tcontinued\nLines: 2\n\nBody line.\n\nMore.\n"
    assert strip_newsgroup_header(post) == "Body line.\n\nMore.\n"


def test_strip_newsgroup_header_drops_header_lines_opening_the_body():
    post = "From: a@b.edu\nSubject: Re: Eugenics\nLines: 3\n\nSubject: Re: Eugenics\nFrom: R, r@b.edu\n\n" \
           "Body.\nSubject: quoted later stays\n"
    assert strip_newsgroup_header(post) == "Body.\nSubject: quoted later stays\n"
    assert strip_newsgroup_header("From: a\n\nReply-To: a@b.c\nIn article x writes:\n") == "In article x writes:\n"
    assert strip_newsgroup_header("From: a\n\nSubject: only\n") == ""
    assert strip_newsgroup_header("From: a\n\n\tFrom: b (B) writes:\n\n\tquoted\n") == "quoted\n"
    assert strip_newsgroup_header("From: a\n\n<1@x.edu> <2@y.org>\nOrganization: O\n\nText\n") == "Text\n"


def test_strip_newsgroup_header_crlf_and_no_body():
    assert strip_newsgroup_header("From: a@b.edu\r\nSubject: s\r\n\r\nbody\r\n") == "body\n"
    assert strip_newsgroup_header("From: a@b.edu\nSubject: only a subject\n") == ""


@pytest.mark.parametrize(
    "raw, kept",
    [
        ("mail jdoe@cs.example.edu.", "mail ."),
        ("J.Doe@cs.uni-x.edu (John Doe) writes", "(John Doe) writes"),
        ("In article <1993Apr5.1234@host.edu> x@y.com writes:", "In article writes:"),
        ("Contact: <jdoe@cs.example.edu>", "Contact:"),
        ("chained a.b.1@nd.edu@nd.edu wrote", "chained wrote"),
        ("@econ.duke.edu  fls@econ.duke.edu sig", "sig"),
        ("routes uunet!host!user@relay.com and me%host@relay.org", "routes and"),
        ("kane@{buast7,astro}.bu.edu and 74017.461@@compuserve.com", "and"),
        ("cut at a line break: name@\nhost.edu", "cut at a line break: host.edu"),
        ("E-mail) jxl9011@129.21.200.201 and 1/4 mile@16.2.", "E-mail) and 1/4 mile@16.2."),
        ("prices: 2@3.50 each, @echo off, user @ home", "prices: 2@3.50 each, @echo off, user @ home"),
    ],
)
def test_remove_email_addresses(raw, kept):
    assert normalize_whitespace(remove_email_addresses(raw)) == kept


def test_clean_newsgroup_post():
    post = (
        "From: jdoe@cs.example.edu (John Doe)\nSubject: Re: Orbits\nLines: 3\n\n"
        "In article <1@x.edu> smith@math.example.com writes:\n>Orbits are ellipses.\nAgreed.\n"
    )
    assert clean_newsgroup_post(post) == "In article writes: >Orbits are ellipses. Agreed."


def test_decode_text_utf8_bom_and_latin1_fallback():
    assert decode_text("café".encode("utf-8")) == "café"
    assert decode_text(b"\xef\xbb\xbfhi") == "hi"
    assert decode_text(b"caf\xe9 \xb6") == "café ¶"
