"""Full-text search: the one module that knows which database it talks to.

A person's query is split at whitespace into words; a word with no letter or digit
(``&``, ``"``, ``(``...) is dropped, so a query of punctuation only is no query. Each
word must match (AND) and the last one matches as a prefix, so results follow the
typing. Every character the user typed reaches the database as data inside a quoted
lexeme or string, never as query syntax, so nothing the user types is a syntax error.

PostgreSQL (``customers.search_vector``, 'simple' config, GIN index): each word becomes
``('word' | 'part1' & 'part2')``. The quoted word goes through the same parser as the
document, so ``example.com`` or ``jean-luc`` match the lexemes the column holds; the
alternative of its letter/digit runs matches the email's split form while an address is
half typed (``jane.doe@mail-h`` -> jane & doe & mail & h:*). Relevance is ``ts_rank``
(name and email weigh A, organization and job title B, notes C).

SQLite (``customers_fts``, FTS5, unicode61 without diacritics): each word becomes an FTS5
string ``"word"`` (a phrase of the tokens the word splits into, ``"`` doubled), the last
one ``"word"*``. Relevance is ``-bm25(...)`` with the same column weights, negated so
that higher is better on both engines.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.querystring import QueryString

from app.customers.models import MAX_SEARCH_WORDS

# Letter and digit runs: how both databases' tokenizers cut text into words, near enough.
_WORD_RUN = re.compile(r"[^\W_]+")
_SPACES = re.compile(r"\s+")

# FTS5 column weights, in the table's column order: name, email, organization,
# job_title, notes; the same proportions as PostgreSQL's A/B/C.
_BM25_WEIGHTS = "10.0, 10.0, 4.0, 4.0, 1.0"


def search_words(q: str | None) -> list[str]:
    """The words of a query that can match anything."""
    if not q:
        return []
    words = [word for word in q.split() if _WORD_RUN.search(word)]
    return words[:MAX_SEARCH_WORDS]


def _pg_lexeme(text: str, prefix: bool) -> str:
    # Inside a quoted tsquery lexeme only the quote and the backslash are special.
    quoted = "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    return quoted + (":*" if prefix else "")


def postgres_tsquery(words: Sequence[str]) -> str:
    """A to_tsquery('simple', ...) expression matching every word, the last as a prefix."""
    clauses = []
    for index, word in enumerate(words):
        prefix = index == len(words) - 1
        runs = _WORD_RUN.findall(word)
        if [word] == runs:
            clauses.append(_pg_lexeme(word, prefix))
            continue
        parts = " & ".join(
            _pg_lexeme(run, prefix and i == len(runs) - 1) for i, run in enumerate(runs)
        )
        clauses.append(f"({_pg_lexeme(word, prefix)} | {parts})")
    return " & ".join(clauses)


def sqlite_match(words: Sequence[str]) -> str:
    """An FTS5 MATCH expression: each word a quoted string, the last a prefix."""
    strings = ['"' + word.replace('"', '""') + '"' for word in words]
    if strings:
        strings[-1] += "*"
    return " ".join(strings)


@dataclass(frozen=True)
class SearchSql:
    """Pieces the repository puts into its query; the customers row is aliased ``c``."""

    source: QueryString  # what follows FROM
    condition: QueryString  # goes into WHERE
    rank: QueryString  # higher is more relevant


PLAIN_SOURCE = QueryString("customers AS c")


def search_sql(engine: Engine, words: Sequence[str]) -> SearchSql:
    if not words:
        raise ValueError("search_sql needs at least one word; check search_words() first")
    if isinstance(engine, PostgresEngine):
        return SearchSql(
            source=QueryString(
                "customers AS c, to_tsquery('simple', {}) AS query", postgres_tsquery(words)
            ),
            condition=QueryString("c.search_vector @@ query"),
            rank=QueryString("ts_rank(c.search_vector, query)"),
        )
    if isinstance(engine, SQLiteEngine):
        return SearchSql(
            # CROSS JOIN fixes SQLite's join order: the full-text index first, then each
            # hit's row by its id. Left to itself the planner may start from the user's
            # customers and run the MATCH once per customer (a search over 20,000
            # customers took over a minute that way; this way it takes milliseconds).
            source=QueryString(
                "customers_fts CROSS JOIN customers AS c ON c.id = customers_fts.rowid"
            ),
            condition=QueryString("customers_fts MATCH {}", sqlite_match(words)),
            rank=QueryString(f"-bm25(customers_fts, {_BM25_WEIGHTS})"),
        )
    raise TypeError(f"no full-text search for engine {type(engine).__name__}")


def _fold(text: str) -> str:
    """Lower-cased without accents, as FTS5's remove_diacritics compares words."""
    if text.isascii():
        return text.lower()  # the same as below for ASCII, at a fraction of the cost
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _matcher(words: Sequence[str]) -> tuple[set[str], set[str]]:
    exact: set[str] = set()
    prefixes: set[str] = set()
    for index, word in enumerate(words):
        runs = [_fold(run) for run in _WORD_RUN.findall(word)]
        if index == len(words) - 1 and runs:
            exact.update(runs[:-1])
            prefixes.add(runs[-1])
        else:
            exact.update(runs)
    return exact, prefixes


def snippet(
    notes: str, words: Sequence[str], *, context: int = 60, length: int = 200
) -> str | None:
    """An excerpt of ``notes`` around the first matching word, or None when none matches.

    Returned as HTML: the note text is escaped and each matching word is wrapped in
    ``<mark>``; nothing of the note can become markup.
    """
    if not notes or not words:
        return None
    exact, prefixes = _matcher(words)
    # Folding works character by character, so a word that matches folds to a part of
    # the folded note: most notes of a result page are ruled out by this one pass.
    folded_notes = _fold(notes)
    if not any(word in folded_notes for word in (*exact, *prefixes)):
        return None

    def matches(token: str) -> bool:
        folded = _fold(token)
        return folded in exact or any(folded.startswith(prefix) for prefix in prefixes)

    tokens = _WORD_RUN.finditer(notes)
    first = next((m for m in tokens if matches(m.group())), None)
    if first is None:
        return None
    start = max(0, first.start() - context)
    if start > 0:
        # Begin at a word boundary, not in the middle of a word.
        space = notes.find(" ", start, first.start())
        start = space + 1 if space != -1 else first.start()
    end = min(len(notes), start + length)
    if end < len(notes):
        space = notes.rfind(" ", first.end(), end)
        end = space if space != -1 else max(end, first.end())
    # Only the excerpt's own words are looked at after the first hit.
    hits = [first]
    for token in tokens:
        if token.start() >= end:
            break
        if matches(token.group()):
            hits.append(token)

    def text(part: str) -> str:
        return html.escape(_SPACES.sub(" ", part))

    pieces = ["… " if start > 0 else ""]
    position = start
    for hit in hits:
        if hit.end() > end:
            break
        pieces.append(text(notes[position : hit.start()]))
        pieces.append(f"<mark>{html.escape(hit.group())}</mark>")
        position = hit.end()
    pieces.append(text(notes[position:end]))
    pieces.append(" …" if end < len(notes) else "")
    return "".join(pieces).strip()
