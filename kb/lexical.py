"""BM25 over the indexed chunks (bm25s), kept in memory and rebuilt when the index changes."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import bm25s
import Stemmer
from bm25s.tokenization import Tokenizer

from kb.normalise import Speller, normalise_text

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG


class LexicalIndex:
    def __init__(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        *,
        normalise: bool = True,
        known_stems: set[str] | None = None,
    ) -> None:
        self.ids = list(ids)
        self.normalise = normalise
        # Stemming lets "descaling" match "descale" and "returns" match "returned".
        self._tokenizer = Tokenizer(
            stopwords="en",
            stemmer=Stemmer.Stemmer("english").stemWord,
        )
        self.speller = Speller(texts if normalise else (), known_stems)
        self._retriever: bm25s.BM25 | None = None
        if self.ids:
            texts = [normalise_text(t) for t in texts] if normalise else list(texts)
            tokens = self._tokenizer.tokenize(
                texts, update_vocab=True, return_as="ids", show_progress=False
            )
            self._retriever = bm25s.BM25()
            self._retriever.index(tokens, show_progress=False)
        # The vocabulary is fixed once the index is built: bm25s rebuilds this dict per call.
        self._vocab = self._tokenizer.get_vocab_dict()

    def __len__(self) -> int:
        return len(self.ids)

    def prepare(self, query: str) -> str:
        """The query as the index reads it: misspellings corrected, one spelling per word."""
        if not self.normalise:
            return query
        return normalise_text(self.speller.correct_text(query))

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) best first; only chunks sharing a term with the query."""
        return self.search_many([query], n)[0]

    def search_many(self, queries: Sequence[str], n: int) -> list[list[tuple[str, float]]]:
        """`search` for each query: tokenized together, scored in one call."""
        found: list[list[tuple[str, float]]] = [[] for _ in queries]
        if self._retriever is None or n <= 0 or not queries:
            return found
        vocab = self._vocab
        tokenized = self._tokenizer.tokenize(
            [self.prepare(q) for q in queries],
            update_vocab=False,
            return_as="string",
            show_progress=False,
        )
        asked = [
            (j, [vocab[t] for t in tokens if t in vocab]) for j, tokens in enumerate(tokenized)
        ]
        asked = [(j, ids) for j, ids in asked if ids]
        if not asked:
            return found
        # n_threads=0: in this thread; any other value starts a thread pool per call (~2 ms).
        results, scores = self._retriever.retrieve(
            [ids for _, ids in asked], k=min(n, len(self.ids)), show_progress=False, n_threads=0
        )
        for row, (j, _) in enumerate(asked):
            found[j] = [
                (self.ids[int(i)], float(s))
                for i, s in zip(results[row], scores[row], strict=True)
                if s > 0
            ]
        return found
